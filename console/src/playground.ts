// Playground: streaming chat through the gateway, with tokens/s, cost, the
// receipt id and a client-side check of the provider's signed receipt.
import { api, apiKey, type GatewayProvider } from "./api";
import type { Json } from "./json";
import { hashOutputText, verifyReceipt } from "./receipt";
import { acct, badge, type Child, blk, fixed, h, kv, nextId, prov, set, short, unavailable } from "./ui";
import type { View } from "./view";

type Obj = { [k: string]: Json };

function field(label: string, control: HTMLElement & { id: string }, hint?: string) {
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control, hint ? h("small", null, hint) : null);
}

export function playground(): View {
  const keyInput = h("input", { id: nextId("apikey"), type: "password", autocomplete: "off", spellcheck: "false", value: apiKey.get() });
  keyInput.addEventListener("change", () => apiKey.set(keyInput.value.trim()));
  const modelSel = h("select", { id: "pg-model" });
  const provSel = h("select", { id: "pg-provider" }, h("option", { value: "" }, "any (gateway routes)"));
  const prompt = h("textarea", { id: "pg-prompt", rows: 3 }, "Write one sentence about the sea.");
  const maxTokens = h("input", { id: "pg-max", type: "number", min: 1, max: 4096, value: 48 });
  const temperature = h("input", { id: "pg-temp", type: "number", min: 0, max: 2, step: 0.1, value: 0.7 });
  const send = h("button", { type: "submit", id: "pg-send", class: "primary" }, "Send");
  const stop = h("button", { type: "button", id: "pg-stop", disabled: true }, "Stop");
  const output = h("div", { id: "chat-output", class: "output", role: "region", "data-state": "idle", "data-chunks": "0", tabindex: "0", "aria-label": "Model output" });
  const statusLine = h("p", { id: "pg-status", role: "status" });
  const stats = h("div", { id: "pg-stats" });
  const verifyBtn = h("button", { type: "button", id: "pg-verify", disabled: true }, "Verify");
  const verifyOut = h("div", { id: "pg-verify-result", "aria-live": "polite" });
  const msg = h("div");
  let gwProviders: GatewayProvider[] = [];
  let modelIds = new Map<string, string>(); // name -> chain model id
  let abort: AbortController | null = null;
  let last: { receipt: string; text: string } | null = null;
  let loaded = false;

  function fillProviders() {
    const name = modelSel.value;
    const chainId = modelIds.get(name);
    const cur = provSel.value;
    set(provSel, h("option", { value: "" }, "any (gateway routes)"));
    for (const p of gwProviders.filter((p) => p.models.includes(name) || (chainId && p.models.includes(chainId))))
      provSel.appendChild(h("option", { value: p.id }, `${short(p.id)}${p.failing ? " (failing)" : ""} · ${p.price.output_per_1k}/1k out`));
    if ([...provSel.options].some((o) => o.value === cur)) provSel.value = cur;
  }
  modelSel.addEventListener("change", fillProviders);

  async function chat(e: Event) {
    e.preventDefault();
    if (abort) return;
    apiKey.set(keyInput.value.trim());
    const body: Record<string, unknown> = {
      model: modelSel.value,
      messages: [{ role: "user", content: prompt.value }],
      max_tokens: Number(maxTokens.value) || 48,
      temperature: Number.isFinite(temperature.valueAsNumber) ? temperature.valueAsNumber : 0.7,
      stream: true,
      stream_options: { include_usage: true },
    };
    if (provSel.value) body.provider = { order: [provSel.value], allow_fallbacks: false };
    output.textContent = "";
    output.dataset.state = "streaming";
    output.dataset.chunks = "0";
    set(stats);
    set(verifyOut);
    verifyBtn.disabled = true;
    last = null;
    send.disabled = true;
    stop.disabled = false;
    statusLine.textContent = "Streaming…";
    abort = new AbortController();
    const t0 = performance.now();
    let tFirst = 0;
    let text = "";
    let chunks = 0;
    let usage: Obj | null = null;
    let receipt = "";
    let servedBy = "";
    try {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (keyInput.value.trim()) headers.authorization = `Bearer ${keyInput.value.trim()}`;
      const resp = await fetch("/v1/chat/completions", { method: "POST", headers, body: JSON.stringify(body), signal: abort.signal });
      receipt = resp.headers.get("x-agora-receipt") ?? "";
      servedBy = resp.headers.get("x-agora-provider") ?? "";
      if (!resp.ok || !resp.body) {
        const t = await resp.text();
        let m = `HTTP ${resp.status}`;
        try {
          m = JSON.parse(t).error.message ?? m;
        } catch {
          /* not JSON */
        }
        throw new Error(m);
      }
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      let done = false;
      while (!done) {
        const r = await reader.read();
        if (r.done) break;
        buf += dec.decode(r.value, { stream: true });
        let cut: number;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const ev = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          for (const line of ev.split("\n")) {
            if (!line.startsWith("data:")) continue;
            const data = line.slice(5).trim();
            if (data === "[DONE]") {
              done = true;
              break;
            }
            let j: any;
            try {
              j = JSON.parse(data);
            } catch {
              continue;
            }
            if (j.error) throw new Error(j.error.message ?? "stream error");
            const delta = j.choices?.[0]?.delta?.content;
            if (delta) {
              if (!tFirst) tFirst = performance.now();
              text += delta;
              chunks++;
              output.textContent = text;
              output.dataset.chunks = String(chunks);
            }
            if (j.usage) usage = j.usage;
          }
        }
      }
      const t1 = performance.now();
      const completion = Number(usage?.completion_tokens ?? chunks);
      const genSecs = (t1 - (tFirst || t0)) / 1000;
      const tps = genSecs > 0 ? completion / genSecs : null;
      output.dataset.state = "done";
      statusLine.textContent = `Done: ${completion} tokens.`;
      set(
        stats,
        kv([
          ["Tokens/s", h("span", { id: "pg-tps" }, fixed(tps, 1))],
          ["Time to first token", fixed(tFirst ? tFirst - t0 : null, 0, " ms")],
          ["Tokens (prompt / completion)", `${usage?.prompt_tokens ?? "—"} / ${usage?.completion_tokens ?? "—"}`],
          ["Cost", h("span", { id: "pg-cost" }, usage?.cost !== undefined ? `${usage.cost} base units` : "—")],
          ["Provider", servedBy ? prov(servedBy) : "—"],
          ["Receipt", h("code", { id: "pg-receipt" }, receipt || "none")],
        ]),
      );
      if (receipt) {
        last = { receipt, text };
        verifyBtn.disabled = false;
      }
    } catch (err) {
      const aborted = (err as Error).name === "AbortError";
      output.dataset.state = aborted ? "stopped" : "error";
      statusLine.textContent = aborted ? "Stopped." : `Error: ${(err as Error).message}`;
    } finally {
      abort = null;
      send.disabled = false;
      stop.disabled = true;
    }
  }
  stop.addEventListener("click", () => abort?.abort());

  async function verify() {
    if (!last) return;
    const { receipt: id, text } = last;
    set(verifyOut, "Checking…");
    const r = await api.receipt(id);
    if (!r.ok) return set(verifyOut, unavailable("Receipt", r.message));
    const rec = r.data as Obj;
    const signed = rec.receipt as Obj;
    const inner = signed.receipt as Obj;
    const sig = verifyReceipt(signed);
    const textOk = hashOutputText(text) === inner.text_hash;
    const batch = rec.batch as Obj | null;
    const rows: [string, Child][] = [
      ["Signature (checked in this page)", h("span", { id: "pg-sig" }, sig.ok ? badge("signature valid", "ok") : badge(`INVALID: ${sig.error}`, "bad"))],
      ["Output text matches text_hash", textOk ? badge("matches", "ok") : badge("differs", "bad")],
      ["Provider", prov(String(inner.provider))],
      ["Cost on receipt", `${String(inner.cost)} base units`],
    ];
    if (!batch) rows.push(["Batch", h("span", { id: "pg-batch" }, "not committed on chain yet — verify again in a few seconds")]);
    else {
      const bid = String(batch.batch);
      const index = Number(batch.index);
      rows.push(["Batch", [h("code", { id: "pg-batch", title: bid }, short(bid)), ` leaf #${index}`]]);
      rows.push(["Block", blk(Number(batch.height))]);
      const [b, v] = await Promise.all([api.batch(bid), api.verdicts(bid)]);
      let audit: Node | string = "unknown";
      if (b.ok) {
        const drawn = b.data.audits.filter(([i]) => i === index);
        if (!b.data.seed) audit = "audits not drawn yet";
        else if (!drawn.length) audit = "not drawn for audit";
        else {
          const verdict = v.ok ? v.data.find((x) => x.index === index) : undefined;
          audit = h(
            "span",
            { id: "pg-audit" },
            "drawn: ",
            ...drawn.map(([, a]) => acct(a)),
            " — ",
            verdict ? (verdict.passed ? badge("passed", "ok") : badge("FAILED", "bad")) : badge("pending", "warn"),
          );
        }
      } else audit = `batch lookup: ${b.message}`;
      rows.push(["Audit", audit]);
    }
    set(verifyOut, kv(rows));
  }
  verifyBtn.addEventListener("click", () => void verify());

  const form = h(
    "form",
    { class: "stack", onsubmit: (e: Event) => void chat(e), "aria-label": "Chat" },
    field("API key", keyInput, "Bearer key for /v1 (kept in this browser's localStorage)."),
    h("div", { class: "row" }, field("Model", modelSel), field("Pin provider", provSel), field("Max tokens", maxTokens), field("Temperature", temperature)),
    field("Prompt", prompt),
    h("div", { class: "row" }, send, stop),
  );
  const el = h(
    "section",
    { class: "view" },
    h("h1", { tabindex: "-1" }, "Playground"),
    msg,
    form,
    statusLine,
    h("h2", null, "Output"),
    output,
    stats,
    h("div", { class: "row" }, verifyBtn),
    verifyOut,
  );
  return {
    title: "Playground",
    el,
    async update() {
      if (loaded) return;
      const [m, p] = await Promise.all([api.v1Models(), api.gatewayProviders()]);
      const notes: Node[] = [];
      if (!m.ok) notes.push(unavailable("Models (/v1/models)", m.message));
      else {
        loaded = true;
        modelIds = new Map(m.data.data.map((x) => [x.id, x.agora?.model_id ?? ""]));
        const cur = modelSel.value;
        set(modelSel, ...m.data.data.map((x) => h("option", { value: x.id }, x.id)));
        if (cur) modelSel.value = cur;
      }
      if (p.ok) gwProviders = p.data.data;
      else {
        notes.push(unavailable("Providers (/v1/providers)", p.message));
        const c = await api.status();
        if (c.ok)
          gwProviders = c.data.providers.map((x) => ({ ...x, ttft_ms: null, tokens_per_s: null, failing: false }));
      }
      set(msg, ...notes);
      fillProviders();
    },
  };
}
