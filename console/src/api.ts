// Same-origin API: the gateway's /v1 and its /chain proxy of the chain RPC.
// Every call resolves (never throws) to a Res; views show "unavailable" on failure.
import { parseJsonExact, type Json } from "./json";

export type Res<T> = { ok: true; data: T } | { ok: false; status: number; message: string };

const KEY_STORE = "agora.apiKey";
export const apiKey = {
  get: (): string => {
    try {
      return localStorage.getItem(KEY_STORE) ?? "";
    } catch {
      return "";
    }
  },
  set: (k: string) => {
    try {
      localStorage.setItem(KEY_STORE, k);
    } catch {
      /* storage disabled: keep it for this page only */
    }
  },
};

function errorMessage(status: number, body: string): string {
  try {
    const j = JSON.parse(body);
    if (j && j.error) return typeof j.error === "string" ? j.error : j.error.message ?? JSON.stringify(j.error);
  } catch {
    /* not JSON */
  }
  return status === 404 ? "not found (404)" : `HTTP ${status}${body ? ": " + body.slice(0, 200) : ""}`;
}

export interface ReqOpts {
  method?: string;
  body?: unknown;
  key?: string;
  exact?: boolean;
}

export async function request<T>(path: string, o: ReqOpts = {}): Promise<Res<T>> {
  const headers: Record<string, string> = {};
  if (o.body !== undefined) headers["content-type"] = "application/json";
  const key = o.key ?? (path.startsWith("/v1/") ? apiKey.get() : "");
  if (key) headers.authorization = `Bearer ${key}`;
  let resp: Response;
  try {
    resp = await fetch(path, {
      method: o.method ?? (o.body !== undefined ? "POST" : "GET"),
      headers,
      body: o.body !== undefined ? JSON.stringify(o.body) : undefined,
      cache: "no-store",
    });
  } catch (e) {
    return { ok: false, status: 0, message: `network error: ${(e as Error).message}` };
  }
  let text = "";
  try {
    text = await resp.text();
  } catch {
    /* body lost */
  }
  if (!resp.ok) return { ok: false, status: resp.status, message: errorMessage(resp.status, text) };
  try {
    return { ok: true, data: (o.exact ? parseJsonExact(text) : JSON.parse(text)) as T };
  } catch {
    return { ok: false, status: resp.status, message: "the response is not JSON" };
  }
}

const chain = <T>(p: string) => request<T>(`/chain${p}`);

// ---------------------------------------------------------------- shapes

export interface Earned {
  channels: number;
  royalties: number;
  emissions: number;
  data: number;
}
export const earnedTotal = (e?: Partial<Earned> | null) =>
  e ? (e.channels ?? 0) + (e.royalties ?? 0) + (e.emissions ?? 0) + (e.data ?? 0) : 0;
export interface Head {
  chain_id: string;
  height: number;
  block_id: string;
  state_root: string;
  timestamp_ms: number;
}
export interface Finality {
  height: number;
  block_id: string;
  certificate: string | null;
}
export interface TxSummary {
  id?: string;
  from: string;
  kind: string;
}
export interface BlockSummary {
  height: number;
  id: string;
  timestamp_ms: number;
  proposer?: string;
  tx_count?: number;
  txs: TxSummary[];
}
export interface BlockPage {
  head: number;
  blocks: BlockSummary[];
}
export interface Price {
  input_per_1k: number;
  output_per_1k: number;
}
export interface ProviderAudits {
  audits_passed: number;
  audits_failed: number;
  audits_flagged: number;
  slashed: boolean;
  slashed_amount: number;
}
export interface ExplorerProvider {
  id: string;
  endpoint: string;
  models: string[];
  /** null once deregistered. */
  price: Price | null;
  stake: number;
  registered: boolean;
  audits: ProviderAudits;
  earned: Earned;
  balance: number;
}
export interface GatewayProvider {
  id: string;
  endpoint: string;
  models: string[];
  price: Price;
  ttft_ms: number | null;
  tokens_per_s: number | null;
  failing: boolean;
}
export interface ModelEntry {
  id: string;
  name: string;
  architecture: string;
  quantization: string;
  size_bytes: number;
  license: string;
  owner: string;
  royalty_ppm: number;
}
export interface Account {
  id: string;
  balance: number;
  nonce: number;
  next_nonce?: number;
  earned: Earned;
}
export interface Batch {
  id: string;
  provider: string;
  model: string | null;
  root: string;
  first_index: number;
  count: number;
  height: number;
  channel: string | null;
  seed: string | null;
  audits: [number, string][];
}
export interface Verdict {
  index: number;
  auditor: string;
  passed: boolean;
}
export interface Dispute {
  id: string;
  batch: string;
  index: number;
  provider: string;
  accuser: string;
  opened_at: number;
  committee: string[];
  votes: [string, boolean][];
}
export interface SupplyPoint {
  height: number;
  timestamp_ms: number;
  total_supply: number;
  burned: number;
  emitted: number;
  emission_pool: number;
}
export interface Emission {
  height: number;
  epoch: number;
  total: number;
  providers: number;
  validators: number;
  owners: number;
  delegators?: number;
  recipients: { account: string; role: string; amount: number }[];
}
export interface Slash {
  height: number;
  provider: string;
  amount: number;
  reason: string;
}
export interface EarningPoint {
  height: number;
  earned: Earned;
}
export interface ChainStatus {
  chain_id: string;
  height: number;
  models: ModelEntry[];
  providers: { id: string; endpoint: string; models: string[]; price: Price; stake: number }[];
  audits: { provider: string; registered: boolean; stake: number; audits: ProviderAudits }[];
  provider_accounts: { id: string; balance: number; earned: Earned }[];
  supply: { total_supply: number; burned: number; emitted: number; emission_pool: number; supply_cap: number };
}
export type TxStatus =
  | { status: "pending" }
  | { status: "committed"; height: number }
  | { status: "rejected"; code: string; error: string };

// ---------------------------------------------------------------- calls

export const api = {
  head: () => chain<Head>("/head"),
  status: () => chain<ChainStatus>("/status"),
  finality: (h: number) => chain<Finality>(`/finality/${h}`),
  block: (h: number) => chain<Json>(`/block/${h}`),
  blocks: (before?: number, limit = 25) =>
    chain<BlockPage>(`/explorer/blocks?limit=${limit}${before !== undefined ? `&before=${before}` : ""}`),
  account: (id: string) => chain<Account>(`/account/${id}`),
  accounts: (q: { offset: number; limit: number; sort: string; q: string }) =>
    chain<{ total: number; accounts: Account[] }>(
      `/explorer/accounts?offset=${q.offset}&limit=${q.limit}&sort=${q.sort}${q.q ? `&q=${encodeURIComponent(q.q)}` : ""}`,
    ),
  providers: () => chain<ExplorerProvider[]>("/explorer/providers"),
  gatewayProviders: () => request<{ data: GatewayProvider[] }>("/v1/providers"),
  models: () => chain<ModelEntry[]>("/models"),
  v1Models: () => request<{ data: { id: string; agora?: { model_id: string; providers: number } }[] }>("/v1/models"),
  batches: (since: number) => chain<{ batches: Batch[]; more: boolean }>(`/batches?since=${since}`),
  batch: (id: string) => chain<Batch>(`/batch/${id}`),
  verdicts: (batch: string) => chain<Verdict[]>(`/verdicts/${batch}`),
  disputes: () => chain<Dispute[]>("/disputes"),
  audits: (p: string) => chain<{ provider: string; registered: boolean; stake: number; audits: ProviderAudits }>(`/audits/${p}`),
  supply: () => chain<ChainStatus["supply"] & { height: number }>("/supply"),
  supplySeries: (since = 0) => chain<SupplyPoint[]>(`/explorer/supply?since=${since}`),
  emissions: () => chain<Emission[]>("/explorer/emissions"),
  slashes: () => chain<Slash[]>("/explorer/slashes"),
  earnings: (a: string) => chain<EarningPoint[]>(`/explorer/earnings/${a}`),
  tx: (id: string) => chain<TxStatus>(`/tx/${id}`),
  submitTx: (hex: string) => request<{ id: string }>("/chain/tx", { body: { tx: hex } }),
  receipt: (id: string) => request<Json>(`/v1/receipts/${id}`, { exact: true }),
  usage: (key: string) => request<{ key: Json; data: Json[] }>("/v1/usage", { key }),
  createKey: (req: string, signature: string) =>
    request<{ key: string; id: string; account: string; owner: string }>("/v1/keys", { body: { request: req, signature } }),
  withdraw: (req: string, signature: string) =>
    request<{ tx: string; from: string; to: string; amount: number }>("/v1/keys/withdraw", { body: { request: req, signature } }),
};

/** Providers as the explorer lists them; derived from /status where /explorer/providers is missing. */
export async function providersWithFallback(): Promise<Res<ExplorerProvider[]>> {
  const r = await api.providers();
  if (r.ok || r.status !== 404) return r;
  const s = await api.status();
  if (!s.ok) return s;
  const byId = new Map<string, ExplorerProvider>();
  for (const p of s.data.providers)
    byId.set(p.id, {
      ...p,
      registered: true,
      audits: { audits_passed: 0, audits_failed: 0, audits_flagged: 0, slashed: false, slashed_amount: 0 },
      earned: { channels: 0, royalties: 0, emissions: 0, data: 0 },
      balance: 0,
    });
  for (const a of s.data.audits) {
    const p = byId.get(a.provider) ?? {
      id: a.provider,
      endpoint: "",
      models: [],
      price: { input_per_1k: 0, output_per_1k: 0 },
      stake: 0,
      registered: false,
      earned: { channels: 0, royalties: 0, emissions: 0, data: 0 },
      balance: 0,
      audits: a.audits,
    };
    p.audits = a.audits;
    p.registered = a.registered;
    p.stake = a.stake;
    byId.set(a.provider, p);
  }
  for (const a of s.data.provider_accounts) {
    const p = byId.get(a.id);
    if (p) {
      p.balance = a.balance;
      p.earned = a.earned;
    }
  }
  return { ok: true, data: [...byId.values()] };
}

/** Recent blocks; from /block/{h} one by one where /explorer/blocks is missing (no tx ids then). */
export async function blocksWithFallback(before: number | undefined, limit: number): Promise<Res<BlockPage>> {
  const r = await api.blocks(before, limit);
  if (r.ok || r.status !== 404) return r;
  const head = await api.head();
  if (!head.ok) return head;
  const top = Math.min(before ?? head.data.height + 1, head.data.height + 1) - 1;
  const hs: number[] = [];
  for (let h = top; h >= 1 && hs.length < Math.min(limit, 10); h--) hs.push(h);
  const got = await Promise.all(hs.map((h) => api.block(h)));
  const blocks: BlockSummary[] = [];
  got.forEach((g, i) => {
    if (!g.ok) return;
    const b = g.data as any;
    blocks.push({
      height: hs[i],
      id: "",
      timestamp_ms: b.header.timestamp_ms,
      txs: (b.txs as any[]).map((t) => ({ from: t.tx.from, kind: t.tx.kind.type })),
    });
  });
  return { ok: true, data: { head: head.data.height, blocks } };
}
