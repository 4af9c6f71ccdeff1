// Explorer views: home (head, finality, blocks), block, tx, accounts, account,
// providers, provider, models, model.
import {
  api,
  blocksWithFallback,
  earnedTotal,
  providersWithFallback,
  type Account,
  type BlockSummary,
  type Earned,
  type ExplorerProvider,
  type GatewayProvider,
  type ModelEntry,
  type Slash,
} from "./api";
import { Chart } from "./chart";
import { isHex32 } from "./bytes";
import {
  acct,
  ago,
  amount,
  badge,
  blk,
  fixed,
  h,
  kv,
  link,
  mdl,
  prov,
  set,
  short,
  Table,
  txl,
  unavailable,
} from "./ui";
import type { View } from "./view";

function page(title: string, ...intro: (Node | string)[]) {
  const el = h("section", { class: "view" }, h("h1", { tabindex: "-1" }, title), ...intro);
  return el;
}

/** Latest finalized height at or below `head` (walks down a few blocks). */
async function finalizedAtOrBelow(head: number): Promise<number | null> {
  const hs = Array.from({ length: Math.min(head + 1, 6) }, (_, i) => head - i);
  const fs = await Promise.all(hs.map((h) => api.finality(h)));
  const i = fs.findIndex((f) => f.ok && !!f.data.certificate);
  return i >= 0 ? hs[i] : null;
}

// ---------------------------------------------------------------- home

export function home(): View {
  const stats = h("div", { class: "cards", "aria-live": "off" });
  const blocksMsg = h("div");
  let head = 0;
  const table = new Table<BlockSummary>({
    caption: "Recent blocks",
    id: "blocks",
    pageSize: 15,
    sort: "height",
    desc: true,
    serverSorts: ["height"],
    serverDesc: { height: true },
    columns: [
      { key: "height", label: "Height", num: true, value: (b) => b.height, cell: (b) => blk(b.height) },
      { key: "id", label: "Block id", value: (b) => b.id, cell: (b) => (b.id ? h("code", { title: b.id }, short(b.id)) : "—") },
      { key: "time", label: "Time", value: (b) => b.timestamp_ms, cell: (b) => ago(b.timestamp_ms) },
      { key: "ntx", label: "Txs", num: true, value: (b) => b.tx_count ?? b.txs.length },
      {
        key: "kinds",
        label: "Transactions",
        value: (b) => b.txs.map((t) => t.kind).join(" "),
        cell: (b) =>
          b.txs.slice(0, 6).map((t) => (t.id ? h("a", { class: "chip", href: `#/tx/${t.id}`, title: t.id }, t.kind) : h("span", { class: "chip" }, t.kind))),
        sortable: false,
      },
    ],
    server: () => void loadBlocks(),
    empty: "No blocks.",
  });
  const el = page("Explorer", stats, blocksMsg, table.el);
  async function loadBlocks() {
    const q = table.q;
    const before = head ? head + 1 - q.offset : undefined;
    const r = await blocksWithFallback(before, q.limit);
    if (!r.ok) return set(blocksMsg, unavailable("Blocks", r.message));
    set(blocksMsg);
    const blocks = q.filter ? r.data.blocks.filter((b) => JSON.stringify(b).toLowerCase().includes(q.filter)) : r.data.blocks;
    table.setPage(blocks, r.data.head);
  }
  return {
    title: "Explorer",
    el,
    async update() {
      const [hr, sr] = await Promise.all([api.head(), api.supply()]);
      if (!hr.ok) {
        set(stats, unavailable("Chain head", hr.message));
        return;
      }
      head = hr.data.height;
      const [fin] = await Promise.all([finalizedAtOrBelow(head), loadBlocks()]);
      const card = (label: string, value: Node | string, id?: string) =>
        h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: "value", id }, value));
      set(
        stats,
        card("Chain", hr.data.chain_id),
        card("Head height", blk(head), "head-height"),
        card("Finalized", fin === null ? "—" : blk(fin), "finalized-height"),
        card("Finality lag", fin === null ? "—" : `${head - fin} blocks`, "finality-lag"),
        card("Last block", ago(hr.data.timestamp_ms)),
        card("Total supply", sr.ok ? amount(sr.data.total_supply) : "unavailable"),
      );
    },
  };
}

// ---------------------------------------------------------------- block

export function block(params: string[]): View {
  const height = Number(params[0]);
  const body = h("div");
  const el = page(`Block ${height}`, h("nav", { class: "crumbs", "aria-label": "Neighbouring blocks" }, height > 0 ? link(`#/block/${height - 1}`, "← previous") : "", " ", link(`#/block/${height + 1}`, "next →")), body);
  const txTable = new Table<{ i: number; id?: string; from: string; kind: string; detail: string }>({
    caption: "Transactions",
    columns: [
      { key: "i", label: "#", num: true, value: (t) => t.i },
      { key: "id", label: "Tx id", value: (t) => t.id ?? "", cell: (t) => (t.id ? txl(t.id) : "—") },
      { key: "from", label: "From", value: (t) => t.from, cell: (t) => acct(t.from) },
      { key: "kind", label: "Kind", value: (t) => t.kind },
      { key: "detail", label: "Details", value: (t) => t.detail, cell: (t) => h("code", { class: "detail" }, t.detail) },
    ],
    empty: "No transactions in this block.",
  });
  let done = false;
  return {
    title: `Block ${height}`,
    el,
    async update() {
      if (done) return;
      const [b, s, f] = await Promise.all([api.block(height), api.blocks(height + 1, 1), api.finality(height)]);
      if (!b.ok) return set(body, unavailable(`Block ${height}`, b.message));
      const blockJson = b.data as any;
      const summary = s.ok ? s.data.blocks.find((x) => x.height === height) : undefined;
      const hd = blockJson.header;
      const finalized = f.ok && !!f.data.certificate;
      set(
        body,
        kv([
          ["Height", String(hd.height)],
          ["Block id", h("code", null, summary?.id ?? (f.ok ? f.data.block_id : "—"))],
          ["Finalized", finalized ? badge("finalized", "ok") : badge("not yet", "warn")],
          ["Time", `${new Date(hd.timestamp_ms).toISOString()} (${ago(hd.timestamp_ms)})`],
          ["Proposer", acct(hd.proposer)],
          ["Parent", h("code", null, hd.parent)],
          ["State root", h("code", null, hd.state_root)],
          ["Tx root", h("code", null, hd.tx_root)],
        ]),
        txTable.el,
      );
      txTable.setRows(
        (blockJson.txs as any[]).map((t, i) => {
          const { type, ...rest } = t.tx.kind;
          return { i, id: summary?.txs[i]?.id, from: t.tx.from, kind: type, detail: JSON.stringify(rest).slice(0, 300) };
        }),
      );
      done = finalized; // a finalized block never changes
    },
  };
}

// ---------------------------------------------------------------- tx

export function tx(params: string[]): View {
  const id = params[0];
  const body = h("div");
  const el = page("Transaction", h("p", null, h("code", null, id)), body);
  let done = false;
  return {
    title: `Tx ${short(id)}`,
    el,
    async update() {
      if (done) return;
      const st = await api.tx(id);
      if (!st.ok) return set(body, unavailable("Transaction", st.message));
      const s = st.data;
      if (s.status !== "committed") {
        set(body, kv([["Status", s.status === "pending" ? badge("pending", "warn") : badge(`rejected: ${s.code} ${s.error}`, "bad")]]));
        done = s.status === "rejected";
        return;
      }
      const [b, sum] = await Promise.all([api.block(s.height), api.blocks(s.height + 1, 1)]);
      const summary = sum.ok ? sum.data.blocks.find((x) => x.height === s.height) : undefined;
      const idx = summary ? summary.txs.findIndex((t) => t.id === id) : -1;
      const txj = b.ok && idx >= 0 ? (b.data as any).txs[idx] : undefined;
      set(
        body,
        kv([
          ["Status", badge("committed", "ok")],
          ["Block", blk(s.height)],
          ["From", txj ? acct(txj.tx.from) : "—"],
          ["Nonce", txj ? String(txj.tx.nonce) : "—"],
          ["Kind", txj ? txj.tx.kind.type : "—"],
        ]),
        txj ? h("pre", { class: "json", tabindex: "0", "aria-label": "Transaction JSON" }, JSON.stringify(txj, null, 2)) : "",
      );
      done = true;
    },
  };
}

// ---------------------------------------------------------------- accounts

export function accounts(): View {
  const msg = h("div");
  const lookupId = "lookup-account";
  const input = h("input", { id: lookupId, placeholder: "64 hex characters", autocomplete: "off", spellcheck: "false" });
  const form = h(
    "form",
    {
      class: "inline",
      onsubmit: (e: Event) => {
        e.preventDefault();
        const v = input.value.trim().toLowerCase();
        if (isHex32(v)) location.hash = `#/account/${v}`;
      },
    },
    h("label", { for: lookupId }, "Go to account"),
    input,
    h("button", { type: "submit" }, "Open"),
  );
  const sortMap: Record<string, string> = { balance: "balance", earned: "earned", id: "id" };
  const table = new Table<Account>({
    caption: "Accounts",
    sort: "balance",
    desc: true,
    serverSorts: ["balance", "earned", "id"],
    serverDesc: { balance: true, earned: true, id: false },
    columns: [
      { key: "id", label: "Account", value: (a) => a.id, cell: (a) => acct(a.id) },
      { key: "balance", label: "Balance", num: true, value: (a) => a.balance, cell: (a) => amount(a.balance) },
      { key: "nonce", label: "Nonce", num: true, value: (a) => a.nonce },
      { key: "earned", label: "Earned", num: true, value: (a) => earnedTotal(a.earned), cell: (a) => amount(earnedTotal(a.earned)) },
    ],
    server: () => void load(),
  });
  async function load() {
    const q = table.q;
    const r = await api.accounts({ offset: q.offset, limit: q.limit, sort: sortMap[q.sort] ?? "balance", q: q.filter });
    if (!r.ok) return set(msg, unavailable("Account list", r.message));
    set(msg);
    table.setPage(r.data.accounts, r.data.total);
  }
  return { title: "Accounts", el: page("Accounts", form, msg, table.el), update: load };
}

function earnedTable(e: Earned) {
  return h(
    "table",
    { class: "small" },
    h("caption", null, "Earnings by source"),
    h("thead", null, h("tr", null, h("th", { scope: "col" }, "Source"), h("th", { scope: "col", class: "num" }, "Earned"))),
    h(
      "tbody",
      null,
      (["channels", "royalties", "emissions", "data"] as const).map((k) => h("tr", null, h("th", { scope: "row" }, k), h("td", { class: "num" }, amount(e?.[k] ?? 0)))),
      h("tr", null, h("th", { scope: "row" }, "total"), h("td", { class: "num" }, amount(earnedTotal(e)))),
    ),
  );
}

function earningsChart(title: string) {
  const chart = new Chart(title, ["channels", "royalties", "emissions", "data"]);
  const msg = h("div");
  return {
    el: h("div", null, msg, chart.el),
    async load(id: string) {
      const r = await api.earnings(id);
      if (!r.ok) return set(msg, unavailable("Earnings history", r.message));
      set(msg);
      const pts = r.data;
      chart.set(
        pts.map((p) => p.height),
        (["channels", "royalties", "emissions", "data"] as const).map((k) => pts.map((p) => Number(p.earned[k] ?? 0))),
      );
    },
    destroy: () => chart.destroy(),
  };
}

export function account(params: string[]): View {
  const id = params[0];
  const body = h("div");
  const chart = earningsChart("Earnings over time");
  const el = page("Account", h("p", null, h("code", { class: "wrap" }, id)), body, chart.el);
  return {
    title: `Account ${short(id)}`,
    el,
    destroy: chart.destroy,
    async update() {
      const [r] = await Promise.all([api.account(id), chart.load(id)]);
      if (!r.ok) return set(body, unavailable("Account", r.message));
      const a = r.data;
      set(body, kv([["Balance", h("span", { id: "account-balance" }, amount(a.balance))], ["Nonce", String(a.nonce)], ["Next nonce", String(a.next_nonce ?? a.nonce)]]), earnedTable(a.earned));
    },
  };
}

// ---------------------------------------------------------------- providers

interface ProviderRow extends ExplorerProvider {
  gw?: GatewayProvider;
}

function priceText(p: ExplorerProvider): string {
  return p.price ? `${p.price.input_per_1k} / ${p.price.output_per_1k}` : "—";
}

function slashedBadge(p: ExplorerProvider) {
  return p.audits.slashed ? badge(`SLASHED ${amount(p.audits.slashed_amount)}`, "bad") : null;
}

function providerStatus(p: ExplorerProvider) {
  return [slashedBadge(p), p.registered ? badge("registered", "ok") : badge("deregistered", "warn"), p.audits.slashed ? "" : ""];
}

async function providerRows(): Promise<{ rows: ProviderRow[]; error?: string; gwError?: string }> {
  const [p, g] = await Promise.all([providersWithFallback(), api.gatewayProviders()]);
  if (!p.ok) return { rows: [], error: p.message };
  const gw = new Map<string, GatewayProvider>();
  if (g.ok) for (const x of g.data.data) gw.set(x.id, x);
  return { rows: p.data.map((x) => ({ ...x, gw: gw.get(x.id) })), gwError: g.ok ? undefined : g.message };
}

export function providers(): View {
  const msg = h("div");
  const table = new Table<ProviderRow>({
    caption: "Providers",
    id: "providers",
    sort: "stake",
    desc: true,
    columns: [
      { key: "id", label: "Provider", value: (p) => p.id, cell: (p) => prov(p.id) },
      { key: "status", label: "Status", value: (p) => (p.audits.slashed ? "slashed" : p.registered ? "registered" : "deregistered"), cell: (p) => providerStatus(p) },
      { key: "stake", label: "Stake", num: true, value: (p) => p.stake, cell: (p) => amount(p.stake) },
      { key: "passed", label: "Audits passed", num: true, value: (p) => p.audits.audits_passed },
      { key: "failed", label: "Failed", num: true, value: (p) => p.audits.audits_failed },
      { key: "ttft", label: "TTFT ms", num: true, value: (p) => p.gw?.ttft_ms ?? -1, cell: (p) => fixed(p.gw?.ttft_ms, 0) },
      { key: "tps", label: "Tokens/s", num: true, value: (p) => p.gw?.tokens_per_s ?? -1, cell: (p) => fixed(p.gw?.tokens_per_s, 1) },
      { key: "price", label: "Price in/out per 1k", num: true, value: (p) => p.price?.output_per_1k ?? -1, cell: priceText },
      { key: "earned", label: "Earned", num: true, value: (p) => earnedTotal(p.earned), cell: (p) => amount(earnedTotal(p.earned)) },
    ],
    text: (p) => `${p.id} ${p.endpoint} ${p.audits.slashed ? "slashed" : ""} ${p.registered ? "registered" : "deregistered"}`,
  });
  return {
    title: "Providers",
    el: page("Providers", msg, table.el),
    async update() {
      const r = await providerRows();
      set(msg, r.error ? unavailable("Providers", r.error) : "", r.gwError ? unavailable("Gateway measurements (/v1/providers)", r.gwError) : "");
      table.setRows(r.rows);
    },
  };
}

export function provider(params: string[]): View {
  const id = params[0];
  const body = h("div");
  const chart = earningsChart("Earnings over time");
  const slashes = new Table<Slash>({
    caption: "Slashing history",
    sort: "height",
    desc: true,
    columns: [
      { key: "height", label: "Height", num: true, value: (s) => s.height, cell: (s) => blk(s.height) },
      { key: "amount", label: "Amount", num: true, value: (s) => s.amount, cell: (s) => amount(s.amount) },
      { key: "reason", label: "Reason", value: (s) => s.reason },
    ],
    empty: "Never slashed.",
  });
  const slashMsg = h("div");
  const el = page("Provider", h("p", null, h("code", { class: "wrap" }, id)), body, h("h2", null, "Slashing"), slashMsg, slashes.el, h("h2", null, "Earnings"), chart.el);
  return {
    title: `Provider ${short(id)}`,
    el,
    destroy: chart.destroy,
    async update() {
      const [rows, au, sl] = await Promise.all([providerRows(), api.audits(id), api.slashes(), chart.load(id)]);
      const p = rows.rows.find((x) => x.id === id);
      const audits = au.ok ? au.data.audits : p?.audits;
      if (!p && !au.ok) return set(body, unavailable("Provider", rows.error ?? au.message));
      const slashed = audits?.slashed ?? false;
      set(
        body,
        h("p", { id: "provider-status" }, slashed ? badge(`SLASHED ${amount(audits?.slashed_amount ?? 0)}`, "bad") : badge("not slashed", "ok"), " ", (au.ok ? au.data.registered : p?.registered) ? badge("registered", "ok") : badge("deregistered", "warn")),
        kv([
          ["Endpoint", p?.endpoint ?? "—"],
          ["Stake", amount(au.ok ? au.data.stake : p?.stake)],
          ["Balance", amount(p?.balance)],
          ["Models", (p?.models ?? []).map((m) => [mdl(m), " "])],
          ["Price per 1k (in / out)", p ? priceText(p) : "—"],
          ["Audits passed", String(audits?.audits_passed ?? "—")],
          ["Audits failed", String(audits?.audits_failed ?? "—")],
          ["Audits flagged", String(audits?.audits_flagged ?? "—")],
          ["Measured TTFT", fixed(p?.gw?.ttft_ms, 0, " ms")],
          ["Measured throughput", fixed(p?.gw?.tokens_per_s, 1, " tokens/s")],
          ["Gateway health", p?.gw ? (p.gw.failing ? badge("failing", "bad") : badge("ok", "ok")) : "—"],
        ]),
        p ? earnedTable(p.earned) : "",
      );
      if (sl.ok) {
        set(slashMsg);
        slashes.setRows(sl.data.filter((s) => s.provider === id));
      } else set(slashMsg, unavailable("Slashing history", sl.message));
    },
  };
}

// ---------------------------------------------------------------- models

export function models(): View {
  const msg = h("div");
  let provs: ProviderRow[] = [];
  const served = (m: ModelEntry) => provs.filter((p) => p.registered && p.models.includes(m.id));
  const table = new Table<ModelEntry>({
    caption: "Models",
    sort: "name",
    columns: [
      { key: "name", label: "Name", value: (m) => m.name, cell: (m) => mdl(m.id, m.name) },
      { key: "arch", label: "Architecture", value: (m) => m.architecture },
      { key: "quant", label: "Quantization", value: (m) => m.quantization },
      { key: "size", label: "Size (MB)", num: true, value: (m) => m.size_bytes, cell: (m) => (m.size_bytes / 1e6).toFixed(1) },
      { key: "providers", label: "Providers", num: true, value: (m) => served(m).length },
      {
        key: "price",
        label: "Cheapest out/1k",
        num: true,
        value: (m) => Math.min(...served(m).map((p) => p.price?.output_per_1k ?? Infinity), Infinity),
        cell: (m) => {
          const v = Math.min(...served(m).map((p) => p.price?.output_per_1k ?? Infinity));
          return isFinite(v) ? String(v) : "—";
        },
      },
      { key: "license", label: "License", value: (m) => m.license },
    ],
  });
  return {
    title: "Models",
    el: page("Models", msg, table.el),
    async update() {
      const [m, p] = await Promise.all([api.models(), providerRows()]);
      provs = p.rows;
      if (!m.ok) return set(msg, unavailable("Models", m.message));
      set(msg);
      table.setRows(m.data);
    },
  };
}

export function model(params: string[]): View {
  const id = params[0];
  const body = h("div");
  const table = new Table<ProviderRow>({
    caption: "Providers serving this model",
    sort: "tps",
    desc: true,
    columns: [
      { key: "id", label: "Provider", value: (p) => p.id, cell: (p) => prov(p.id) },
      { key: "status", label: "Status", value: (p) => (p.audits.slashed ? "slashed" : p.registered ? "registered" : "deregistered"), cell: (p) => providerStatus(p) },
      { key: "price", label: "Price in/out per 1k", num: true, value: (p) => p.price?.output_per_1k ?? -1, cell: priceText },
      { key: "ttft", label: "TTFT ms", num: true, value: (p) => p.gw?.ttft_ms ?? -1, cell: (p) => fixed(p.gw?.ttft_ms, 0) },
      { key: "tps", label: "Tokens/s", num: true, value: (p) => p.gw?.tokens_per_s ?? -1, cell: (p) => fixed(p.gw?.tokens_per_s, 1) },
      { key: "passed", label: "Audits passed", num: true, value: (p) => p.audits.audits_passed },
      { key: "failed", label: "Audits failed", num: true, value: (p) => p.audits.audits_failed },
    ],
    empty: "No provider serves this model.",
  });
  return {
    title: "Model",
    el: page("Model", body, table.el),
    async update() {
      const [m, p] = await Promise.all([api.models(), providerRows()]);
      const entry = m.ok ? m.data.find((x) => x.id === id) : undefined;
      if (!entry) set(body, unavailable("Model", m.ok ? "not registered" : m.message));
      else
        set(
          body,
          kv([
            ["Name", entry.name],
            ["Id", h("code", { class: "wrap" }, entry.id)],
            ["Architecture", entry.architecture],
            ["Quantization", entry.quantization],
            ["Size", `${(entry.size_bytes / 1e6).toFixed(1)} MB`],
            ["License", entry.license],
            ["Owner", acct(entry.owner)],
            ["Royalty", `${(entry.royalty_ppm / 1e4).toFixed(2)} %`],
          ]),
        );
      table.setRows(p.rows.filter((x) => x.models.includes(id)));
    },
  };
}
