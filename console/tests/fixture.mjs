// A seeded, deterministic synthetic chain for the console: 10,000 blocks of
// history, 1,000 providers, emissions and supply series. `handle(path)` answers
// the console's /chain/* and /v1/* requests; bench.mjs serves it through
// page.route, and `FIXTURE=1 node tests/devserver.mjs` serves it to a browser.

function mulberry32(a) {
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const hexOf = (rnd) => {
  let s = "";
  for (let i = 0; i < 8; i++) s += Math.floor(rnd() * 2 ** 32).toString(16).padStart(8, "0");
  return s;
};
const KINDS = ["transfer", "settle_channel", "commit_receipts", "submit_verdict", "open_channel", "vote_dispute", "reveal_weights", "register_provider"];
const zeroEarned = () => ({ channels: 0, royalties: 0, emissions: 0, data: 0 });

export function makeFixture({ seed = 42, blocks = 10_000, providers = 1_000, accounts = 5_000, startMs = 1_790_000_000_000 } = {}) {
  const rnd = mulberry32(seed);
  const t0 = Date.now();
  const base = blocks;
  const head = () => base + Math.floor((Date.now() - t0) / 1000); // a block a second
  const models = Array.from({ length: 5 }, (_, i) => ({
    id: hexOf(rnd),
    name: ["smollm2-135m-instruct", "qwen2.5-0.5b", "llama-3.2-1b", "phi-3-mini", "gemma-2b"][i],
    architecture: "llama",
    quantization: "Q4_1",
    size_bytes: Math.floor(1e8 + rnd() * 2e9),
    license: "Apache-2.0",
    owner: hexOf(rnd),
    royalty_ppm: Math.floor(rnd() * 50_000),
    tokenizer_hash: hexOf(rnd),
  }));
  const provs = Array.from({ length: providers }, (_, i) => {
    const slashed = rnd() < 0.03;
    const passed = Math.floor(rnd() * 500);
    return {
      id: hexOf(rnd),
      endpoint: `http://10.0.${i >> 8}.${i & 255}:8081`,
      models: [models[Math.floor(rnd() * models.length)].id],
      price: slashed ? null : { input_per_1k: 5 + Math.floor(rnd() * 20), output_per_1k: 10 + Math.floor(rnd() * 40) },
      stake: slashed ? 0 : Math.floor(1e6 + rnd() * 1e8),
      registered: !slashed,
      audits: { audits_passed: passed, audits_failed: slashed ? 1 : 0, audits_flagged: Math.floor(rnd() * 3), slashed, slashed_amount: slashed ? 1_000_000 : 0 },
      earned: { channels: Math.floor(rnd() * 1e7), royalties: 0, emissions: Math.floor(rnd() * 1e8), data: 0 },
      balance: Math.floor(rnd() * 1e12),
      ttft_ms: rnd() < 0.1 ? null : 50 + rnd() * 800,
      tokens_per_s: rnd() < 0.1 ? null : 5 + rnd() * 120,
      failing: rnd() < 0.05,
    };
  });
  const accts = Array.from({ length: accounts }, () => ({
    id: hexOf(rnd),
    balance: Math.floor(rnd() * 1e12),
    nonce: Math.floor(rnd() * 100),
    earned: { channels: Math.floor(rnd() * 1e6), royalties: 0, emissions: Math.floor(rnd() * 1e7), data: 0 },
  }));
  const validators = Array.from({ length: 7 }, () => hexOf(rnd));
  const block = (h) => {
    const r = mulberry32(seed * 1_000_003 + h);
    const n = Math.floor(r() * 4);
    const id = hexOf(r);
    return {
      height: h,
      id,
      timestamp_ms: startMs + h * 1000,
      proposer: validators[h % validators.length],
      tx_count: n,
      txs: Array.from({ length: n }, () => ({ id: hexOf(r), from: provs[Math.floor(r() * provs.length)].id, kind: KINDS[Math.floor(r() * KINDS.length)] })),
    };
  };
  const batchById = new Map();
  const batch = (h) => {
    const b = batchAt(h);
    batchById.set(b.id, b);
    return b;
  };
  const batchAt = (h) => {
    const r = mulberry32(seed * 7 + h);
    const p = provs[Math.floor(r() * provs.length)];
    const count = 1 + Math.floor(r() * 8);
    return {
      id: hexOf(r),
      provider: p.id,
      model: p.models[0],
      root: hexOf(r),
      first_index: 0,
      count,
      height: h,
      channel: null,
      seed: hexOf(r),
      audits: [[Math.floor(r() * count), validators[Math.floor(r() * validators.length)]]],
    };
  };
  const supplyAt = (h) => ({ height: h, timestamp_ms: startMs + h * 1000, total_supply: 6e12 + h * 1.32e8, burned: h * 37, emitted: h * 1.32e8, emission_pool: (h % 10) * 1.32e8 });
  const emission = (h) => {
    const r = mulberry32(seed * 13 + h);
    const total = 1.32e9;
    const recipients = Array.from({ length: 12 }, (_, i) => ({ account: provs[Math.floor(r() * provs.length)].id, role: ["provider", "validator", "owner", "delegator"][i % 4], amount: Math.floor(total / 12) }));
    return { height: h, epoch: h / 10, total, providers: total * 0.6, validators: total * 0.25, owners: total * 0.1, delegators: total * 0.05, recipients };
  };
  const slashes = provs.filter((p) => p.audits.slashed).map((p, i) => ({ height: 100 + i * 97, provider: p.id, amount: 1_000_000, reason: "failed audit confirmed by committee" }));
  const disputes = Array.from({ length: 20 }, (_, i) => ({
    id: hexOf(rnd),
    batch: hexOf(rnd),
    index: i,
    provider: provs[i].id,
    accuser: validators[i % 7],
    leaf: hexOf(rnd),
    evidence: hexOf(rnd),
    opened_at: base - 100 + i,
    committee: validators.slice(0, 3),
    seed: null,
    votes: [[validators[0], true]],
  }));

  const json = (body, status = 200) => ({ status, body: JSON.stringify(body) });
  const notFound = () => json({ error: { code: "not_found", message: "no such fixture route" } }, 404);

  /** Answer a request for `path` (pathname + search). */
  function handle(path, method = "GET") {
    const url = new URL(path, "http://fixture");
    const p = url.pathname;
    const q = url.searchParams;
    const H = head();
    if (p === "/v1/models")
      return json({ object: "list", data: models.map((m) => ({ id: m.name, object: "model", owned_by: "agora", agora: { model_id: m.id, providers: provs.filter((x) => x.models[0] === m.id).length } })) });
    if (p === "/v1/providers")
      return json({
        object: "list",
        data: provs
          .filter((x) => x.registered)
          .map(({ id, endpoint, models: ms, price, stake, ttft_ms, tokens_per_s, failing }) => ({ id, endpoint, models: ms.map((mid) => models.find((mm) => mm.id === mid).name), price, stake, replayable: true, ttft_ms, tokens_per_s, failing })),
      });
    if (!p.startsWith("/chain/")) return notFound();
    const c = p.slice(6);
    let m;
    if (c === "/head") return json({ chain_id: "agora-fixture", height: H, block_id: block(H).id, state_root: hexOf(mulberry32(H)), timestamp_ms: startMs + H * 1000 });
    if ((m = /^\/finality\/(\d+)$/.exec(c))) {
      const h = Number(m[1]);
      if (h > H) return notFound();
      return json({ height: h, block_id: block(h).id, state_root: hexOf(mulberry32(h)), randomness: null, certificate: h <= H - 2 ? "00" : null });
    }
    if (c === "/explorer/blocks") {
      const limit = Math.min(100, Number(q.get("limit") ?? 25));
      const before = Math.min(Number(q.get("before") ?? H + 1), H + 1);
      const out = [];
      for (let h = before - 1; h >= 1 && out.length < limit; h--) out.push(block(h));
      return json({ head: H, blocks: out });
    }
    if ((m = /^\/block\/(\d+)$/.exec(c))) {
      const b = block(Number(m[1]));
      return json({
        header: { chain_id: "agora-fixture", height: b.height, parent: block(b.height - 1).id, timestamp_ms: b.timestamp_ms, proposer: validators[b.height % 7], tx_root: hexOf(mulberry32(b.height + 1)), state_root: hexOf(mulberry32(b.height + 2)) },
        txs: b.txs.map((t, i) => ({ tx: { chain_id: "agora-fixture", from: t.from, nonce: i, kind: { type: t.kind } }, signature: "00".repeat(64) })),
      });
    }
    if (c === "/supply") return json({ ...supplyAt(H), supply_cap: 21e15 });
    if (c === "/explorer/supply") {
      const since = Number(q.get("since") ?? 0);
      const out = [];
      for (let h = Math.max(1, since + 1); h <= H; h++) out.push(supplyAt(h));
      return json(out);
    }
    if (c === "/explorer/emissions") {
      const out = [];
      for (let h = H - (H % 10); h > 0; h -= 10) out.push(emission(h));
      return json(out);
    }
    if (c === "/explorer/slashes") return json(slashes);
    if (c === "/explorer/providers") return json(provs.map(({ ttft_ms, tokens_per_s, failing, ...x }) => x));
    if (c === "/providers") return json(provs.filter((x) => x.registered));
    if (c === "/models") return json(models);
    if (c === "/status")
      return json({ chain_id: "agora-fixture", height: H, models, providers: provs.filter((x) => x.registered), audits: [], provider_accounts: [], supply: { ...supplyAt(H), supply_cap: 21e15 } });
    if (c === "/explorer/accounts") {
      const sort = q.get("sort") ?? "balance";
      const pre = (q.get("q") ?? "").toLowerCase();
      let rows = pre ? accts.filter((a) => a.id.startsWith(pre)) : accts.slice();
      const tot = (a) => a.earned.channels + a.earned.emissions;
      rows.sort(sort === "id" ? (a, b) => (a.id < b.id ? -1 : 1) : sort === "earned" ? (a, b) => tot(b) - tot(a) : (a, b) => b.balance - a.balance);
      const off = Number(q.get("offset") ?? 0);
      const lim = Math.min(100, Number(q.get("limit") ?? 25));
      return json({ total: rows.length, accounts: rows.slice(off, off + lim) });
    }
    if ((m = /^\/account\/([0-9a-f]{64})$/.exec(c))) {
      const a = accts.find((x) => x.id === m[1]) ?? provs.find((x) => x.id === m[1]) ?? { id: m[1], balance: 0, nonce: 0, earned: zeroEarned() };
      return json({ id: a.id, balance: a.balance, nonce: a.nonce ?? 0, next_nonce: a.nonce ?? 0, earned: a.earned });
    }
    if ((m = /^\/explorer\/earnings\/([0-9a-f]{64})$/.exec(c))) {
      const r = mulberry32(parseInt(m[1].slice(0, 8), 16));
      let e = zeroEarned();
      const out = [];
      for (let h = 10; h <= H; h += 50) {
        e = { channels: e.channels + Math.floor(r() * 1000), royalties: 0, emissions: e.emissions + Math.floor(r() * 5000), data: 0 };
        out.push({ height: h, earned: e });
      }
      return json(out);
    }
    if ((m = /^\/audits\/([0-9a-f]{64})$/.exec(c))) {
      const pr = provs.find((x) => x.id === m[1]);
      return pr ? json({ provider: pr.id, registered: pr.registered, stake: pr.stake, audits: pr.audits }) : notFound();
    }
    if (c === "/batches") {
      const since = Number(q.get("since") ?? 0);
      const out = [];
      for (let h = Math.max(1, since + 1); h <= H && out.length < 256; h++) out.push(batch(h));
      return json({ batches: out, more: out.length === 256 && out[out.length - 1].height < H });
    }
    if ((m = /^\/verdicts\/([0-9a-f]{64})$/.exec(c))) {
      // Drawn audits get their verdict three blocks after the batch.
      const b = batchById.get(m[1]);
      if (!b) return json([]);
      const r = mulberry32(parseInt(m[1].slice(0, 8), 16));
      return json(b.height <= H - 3 ? b.audits.map(([index, auditor]) => ({ index, auditor, passed: r() > 0.05 })) : []);
    }
    if (c === "/disputes") return json(disputes);
    return notFound();
  }
  return { handle, head, providers: provs, models, accounts: accts };
}
