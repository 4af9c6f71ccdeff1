// End-to-end test of the console against a running devnet (gateway serving it).
//   CONSOLE_URL=http://127.0.0.1:8080/ API_KEY=sk-agora-... CHEATER=<hex> \
//   [FAUCET_SEED=<hex>] [ARTIFACTS=dir] [DOCS_SCREENSHOTS=1] [SLASH_DEADLINE_S=420] \
//   node console/tests/e2e.mjs
// Every check waits for a condition with a deadline; prints PASS/FAIL per check.
import { readFileSync, mkdirSync, copyFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as ed from "@noble/ed25519";
import { launch } from "./browser.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const BASE = (process.env.CONSOLE_URL ?? "http://127.0.0.1:8080/").replace(/\/?$/, "/");
const API_KEY = process.env.API_KEY ?? "";
const CHEATER = (process.env.CHEATER ?? "").toLowerCase();
const FAUCET_SEED = (process.env.FAUCET_SEED ?? "").trim();
const ARTIFACTS = process.env.ARTIFACTS ?? join(here, "artifacts");
const DOCS = process.env.DOCS_SCREENSHOTS === "1" ? join(here, "..", "..", "docs", "console") : null;
const SLASH_DEADLINE_S = Number(process.env.SLASH_DEADLINE_S ?? 420);
mkdirSync(ARTIFACTS, { recursive: true });
if (DOCS) mkdirSync(DOCS, { recursive: true });

const VIEWS = [
  ["explorer", "#/"],
  ["accounts", "#/accounts"],
  ["providers", "#/providers"],
  ["models", "#/models"],
  ["audits", "#/audits"],
  ["emissions", "#/emissions"],
  ["supply", "#/supply"],
  ["playground", "#/playground"],
  ["wallet", "#/wallet"],
];

const results = [];
function report(name, ok, detail = "") {
  results.push({ name, ok });
  console.log(`${ok ? "PASS" : "FAIL"} ${name}${detail ? ` — ${detail}` : ""}`);
}
async function check(name, fn) {
  try {
    const detail = await fn();
    report(name, true, detail ?? "");
  } catch (e) {
    report(name, false, String(e?.message ?? e).split("\n")[0]);
  }
}
function skip(name, why) {
  console.log(`SKIP ${name} — ${why}`);
}

const { context, close } = await launch();
await context.addInitScript((key) => {
  if (key) localStorage.setItem("agora.apiKey", key);
}, API_KEY);
const page = await context.newPage();

// Console errors and page errors, with the failing responses that explain them.
let errors = [];
page.on("console", (m) => {
  if (m.type() === "error") errors.push(`console: ${m.text()}`);
});
page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
page.on("response", (r) => {
  if (r.status() >= 400) errors.push(`  (HTTP ${r.status()} ${r.request().method()} ${new URL(r.url()).pathname})`);
});

async function go(hash) {
  const url = BASE + hash;
  if (page.url().startsWith(BASE) && page.url() !== "about:blank") await page.evaluate((h) => (location.hash = h), hash);
  else await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector("main h1");
}

/** Wait until the view's first live update has rendered (no "Loading…", a poll done). */
async function settle() {
  await page.waitForFunction(() => !document.querySelector("main")?.textContent?.includes("Loading…"));
  // One update completes: the hook resolves after the view rendered.
  await page.evaluate(() => window.agoraConsole.update());
}

async function shot(name) {
  const file = join(ARTIFACTS, `${name}.png`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: file, fullPage: false });
  if (DOCS) copyFileSync(file, join(DOCS, `${name}.png`));
}

async function axe(name) {
  // Evaluated through the devtools protocol: the console's CSP (script-src 'self')
  // rightly refuses an injected <script>.
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(AXE);
  const v = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((x) => ({ id: x.id, impact: x.impact, help: x.help, nodes: x.nodes.length, target: x.nodes[0]?.target?.join(" ") }));
  });
  const bad = v.filter((x) => x.impact === "serious" || x.impact === "critical");
  if (bad.length) throw new Error(`${name}: ${bad.map((x) => `${x.impact} ${x.id} (${x.help}; ${x.nodes} nodes, e.g. ${x.target})`).join("; ")}`);
  return `${v.length} minor/moderate`;
}

const text = (sel) => page.locator(sel).first().innerText();

// 1 + 6: every main view loads without console errors; axe finds nothing serious.
for (const [name, hash] of VIEWS) {
  errors = [];
  await check(`view ${name} loads without console errors`, async () => {
    await go(hash);
    await settle();
    await page.evaluate(() => window.agoraConsole.update());
    const real = errors.filter((e) => !e.startsWith("  ("));
    if (real.length) throw new Error(errors.join(" | "));
  });
  await check(`axe ${name}: no serious or critical violations`, () => axe(name));
}

// 2: a new block appears within the refresh period.
await check("explorer shows a new block height within 10 s", async () => {
  await go("#/");
  await page.waitForSelector("#head-height a");
  const h0 = Number(await text("#head-height"));
  await page.waitForFunction((h) => Number(document.querySelector("#head-height")?.textContent) > h, h0, { timeout: 10_000 });
  await page.waitForSelector("#blocks tbody tr a");
  await shot("explorer");
  return `${h0} → ${await text("#head-height")}`;
});

await check("block page shows the block", async () => {
  const head = Number(await text("#head-height"));
  await go(`#/block/${head - 1}`);
  await page.waitForFunction(() => document.querySelector("main dl.kv"), null, { timeout: 10_000 });
  await shot("block");
});

// 3: playground streaming, tokens/s, receipt, verify.
async function chat(provider) {
  await go("#/playground");
  await page.waitForSelector("#pg-model option", { state: "attached", timeout: 15_000 });
  if (provider) {
    await page.waitForSelector(`#pg-provider option[value="${provider}"]`, { state: "attached", timeout: 15_000 });
    await page.selectOption("#pg-provider", provider);
  } else await page.selectOption("#pg-provider", "");
  await page.fill("#pg-prompt", "Count from one to twenty in words.");
  await page.fill("#pg-max", "40");
  await page.fill("#pg-temp", "0.3");
  await page.evaluate(() => {
    const out = document.querySelector("#chat-output");
    window.__chunksSeen = 0;
    new MutationObserver(() => {
      if (out.dataset.state === "streaming") window.__chunksSeen = Math.max(window.__chunksSeen, Number(out.dataset.chunks));
    }).observe(out, { attributes: true, attributeFilter: ["data-chunks", "data-state"] });
  });
  await page.click("#pg-send");
  await page.waitForFunction(() => ["done", "error"].includes(document.querySelector("#chat-output").dataset.state), null, { timeout: 120_000 });
  const state = await page.getAttribute("#chat-output", "data-state");
  MODEL = await page.inputValue("#pg-model");
  if (state !== "done") throw new Error(`chat failed: ${await text("#pg-status")}`);
  return page.evaluate(() => window.__chunksSeen);
}

let chatted = false;
let MODEL = "";
await check("playground streams a chat (≥ 2 chunks before done), shows tokens/s and a receipt", async () => {
  // A sampled reply can end after one token; a short reply is retried (bounded).
  let seen = 0;
  for (let i = 0; i < 4 && seen < 2; i++) seen = await chat("");
  if (seen < 2) throw new Error(`only ${seen} chunks observed while streaming`);
  const tps = Number(await text("#pg-tps"));
  if (!(tps > 0)) throw new Error(`tokens/s not shown: ${await text("#pg-tps")}`);
  const receipt = await text("#pg-receipt");
  if (!/^[0-9a-f]{64}$/.test(receipt)) throw new Error(`no receipt id: ${receipt}`);
  chatted = true;
  return `${seen} chunks, ${tps} tokens/s, receipt ${receipt.slice(0, 12)}…`;
});

await check("Verify shows the receipt's signature valid", async () => {
  if (!chatted) throw new Error("no chat to verify");
  await page.click("#pg-verify");
  await page.waitForSelector("#pg-sig", { timeout: 30_000 });
  const sig = await text("#pg-sig");
  if (!sig.includes("signature valid")) throw new Error(sig);
  // Wait (bounded) for the batch, so the screenshot shows where the receipt landed.
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !(await page.locator("#pg-batch code, code#pg-batch").count())) {
    await page.waitForTimeout(1500);
    await page.click("#pg-verify");
    await page.waitForSelector("#pg-sig", { timeout: 30_000 });
  }
  await shot("playground");
  return (await text("#pg-verify-result")).replace(/\s+/g, " ").slice(0, 160);
});

// 4: pin the cheater, chat, and see it SLASHED.
if (!CHEATER) skip("cheater slashed", "CHEATER is not set");
else
  await check(`cheater ${CHEATER.slice(0, 8)}… pinned, then shown SLASHED within ${SLASH_DEADLINE_S} s`, async () => {
    let ok = 0;
    const notes = [];
    for (let i = 0; i < 3; i++) {
      try {
        await chat(CHEATER);
        ok++;
      } catch (e) {
        notes.push(String(e.message).split("\n")[0].slice(0, 100));
      }
    }
    await go(`#/provider/${CHEATER}`);
    if (!ok) {
      // Only acceptable when the cheater is already slashed (so no longer routable).
      await page.waitForFunction(() => document.querySelector("#provider-status")?.textContent?.includes("SLASHED"), null, { timeout: 15_000 }).catch(() => {
        throw new Error(`no chat with the cheater succeeded: ${notes.join("; ")}`);
      });
      notes.unshift("the cheater was already slashed before the chats");
    }
    await page.waitForFunction(() => document.querySelector("#provider-status")?.textContent?.includes("SLASHED"), null, {
      timeout: SLASH_DEADLINE_S * 1000,
      polling: 1000,
    });
    const status = await text("#provider-status");
    await go("#/providers");
    await page.waitForFunction(() => document.querySelector("#providers tbody")?.textContent?.includes("SLASHED"), null, { timeout: 15_000 });
    await shot("providers");
    return `${ok}/3 chats served; ${status}${notes.length ? ` (${notes.join("; ")})` : ""}`;
  });

// 5: wallet.
if (!FAUCET_SEED) skip("wallet transfer", "FAUCET_SEED is not set (the devnet's faucet.key holds it)");
else {
  const recipientSeed = ed.utils.randomSecretKey();
  const recipient = Buffer.from(await ed.getPublicKeyAsync(recipientSeed)).toString("hex");
  await check("wallet: import faucet seed, transfer to a fresh account, recipient balance updates", async () => {
    await go("#/wallet");
    await page.fill("#wallet-seed", FAUCET_SEED);
    await page.click("#wallet-import");
    await page.waitForFunction(() => Number((document.querySelector("#wallet-balance-value")?.textContent ?? "0").replace(/,/g, "")) > 0, null, { timeout: 15_000 });
    await page.fill("#tx-to", recipient);
    await page.fill("#tx-amount", "12345");
    await page.click("#tx-send");
    await page.waitForFunction(() => /Submitted|Refused/.test(document.querySelector("#tx-result")?.textContent ?? ""), null, { timeout: 15_000 });
    const r = await text("#tx-result");
    if (!r.includes("Submitted")) throw new Error(r);
    await go(`#/account/${recipient}`);
    await page.waitForFunction(() => document.querySelector("#account-balance")?.textContent === "12,345", null, { timeout: 30_000, polling: 500 });
    return `12,345 reached ${recipient.slice(0, 12)}…`;
  });
  await check("wallet: create an API key, fund it, see its usage", async () => {
    await go("#/wallet");
    await page.waitForSelector("#wallet-account");
    await page.fill("#key-total", "50000");
    await page.click("#key-create");
    await page.waitForFunction(() => /Key created|unavailable/.test(document.querySelector("#key-result")?.textContent ?? ""), null, { timeout: 15_000 });
    const res = await text("#key-result");
    if (!res.includes("Key created")) throw new Error(res);
    const key = await text("#key-created");
    await page.waitForFunction(() => /^[\d,]+$/.test(document.querySelector(".keycard .key-spent")?.textContent ?? ""), null, { timeout: 15_000 });
    // Fund it and spend through it, then see the request counted.
    await page.fill("#fund-0", "100000");
    await page.click(".keycard form button[type=submit]");
    const deadline = Date.now() + 60_000;
    let last = "";
    for (;;) {
      const r = await page.evaluate(async ([k, model]) => {
        const resp = await fetch("/v1/chat/completions", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${k}` },
          body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
        }).catch((e) => ({ ok: false, status: 0, text: async () => String(e) }));
        return { ok: resp.ok, status: resp.status, body: resp.ok ? "" : await resp.text() };
      }, [key, MODEL]);
      if (r.ok) break;
      last = `${r.status} ${r.body.slice(0, 120)}`;
      if (Date.now() > deadline) throw new Error(`a chat with the new key never succeeded: ${last}`);
      await page.waitForTimeout(2000);
    }
    await page.waitForFunction(() => Number(document.querySelector(".keycard .key-requests")?.textContent ?? "0") >= 1, null, { timeout: 20_000 });
    await shot("wallet");
    return `key ${key.slice(0, 14)}…, usage ${await text(".keycard .key-requests")} request(s), spent ${await text(".keycard .key-spent")}`;
  });

  await check("wallet: withdraw from the key's account back to the wallet", async () => {
    await page.fill("#fund-0", "1000");
    await page.click("#withdraw-0");
    await page.waitForFunction(() => /Withdrawal .* submitted|Refused/.test(document.querySelector("#fund-msg-0")?.textContent ?? ""), null, { timeout: 20_000 });
    const msg = await text("#fund-msg-0");
    if (!msg.startsWith("Withdrawal")) throw new Error(msg);
    return msg;
  });
}

await close();
const failed = results.filter((r) => !r.ok);
console.log(`\n${results.length - failed.length}/${results.length} checks passed${failed.length ? `; FAILED: ${failed.map((f) => f.name).join(", ")}` : ""}`);
process.exit(failed.length ? 1 : 0);
