// Client-side check of a provider's signed receipt, byte for byte as
// crates/agora-types/src/job.rs: the provider signs
// blake3 derive_key("agora 2026 receipt signature v3", borsh(Receipt)).
import { Writer } from "./borsh";
import { fromHex, toHex, utf8 } from "./bytes";
import { digestIn, verify } from "./crypto";
import type { Json } from "./json";

export const RECEIPT_SIGNING_DOMAIN = "agora 2026 receipt signature v3";
export const OUTPUT_TEXT_DOMAIN = "agora 2026 output text v1";

type Obj = { [k: string]: Json };

const num = (v: Json): bigint | number => {
  if (typeof v === "number" || typeof v === "bigint") return v;
  throw new TypeError(`expected a number, got ${JSON.stringify(v)}`);
};
const str = (v: Json): string => {
  if (typeof v === "string") return v;
  throw new TypeError("expected a string");
};

/** borsh(Receipt) from the receipt's JSON (parsed with parseJsonExact). */
export function encodeReceipt(r: Obj): Uint8Array {
  const w = new Writer();
  w.string(str(r.chain_id));
  for (const k of ["id", "provider", "model", "prompt_hash", "output_hash", "text_hash"]) w.hex32(str(r[k]));
  const p = r.params as Obj;
  w.u32(Number(num(p.max_tokens)));
  w.f32(Number(num(p.temperature)));
  w.f32(Number(num(p.top_p)));
  const stop = (p.stop as Json[]) ?? [];
  w.u32(stop.length);
  for (const s of stop) w.string(str(s));
  w.u64(num(p.seed));
  w.f32(Number(num(p.presence_penalty ?? 0)));
  w.f32(Number(num(p.frequency_penalty ?? 0)));
  w.u32(Number(num(p.choice ?? 0)));
  if (p.logprobs === null || p.logprobs === undefined) w.u8(0);
  else w.u8(1).u8(Number(num(p.logprobs)));
  const c = p.constraint as Obj | null | undefined;
  if (!c) w.u8(0);
  else if (c.type === "json_object") w.u8(1).u8(0);
  else if (c.type === "json_schema") w.u8(1).u8(1).string(str(c.schema));
  else throw new TypeError(`unknown constraint ${String(c.type)}`);
  const u = r.usage as Obj;
  w.u32(Number(num(u.prompt_tokens)));
  w.u32(Number(num(u.completion_tokens)));
  const pr = r.price as Obj;
  w.u64(num(pr.input_per_1k));
  w.u64(num(pr.output_per_1k));
  w.u64(num(r.cost));
  w.u64(num(r.timestamp_ms));
  w.hex32(typeof r.commitments === "string" ? r.commitments : "0".repeat(64));
  return w.finish();
}

export function receiptSigningBytes(r: Obj): Uint8Array {
  return digestIn(RECEIPT_SIGNING_DOMAIN, encodeReceipt(r));
}

/** Whether `signed` ({receipt, signature}) carries its provider's valid signature. */
export function verifyReceipt(signed: Obj): { ok: boolean; error?: string } {
  try {
    const r = signed.receipt as Obj;
    const ok = verify(fromHex(str(signed.signature), 64), receiptSigningBytes(r), fromHex(str(r.provider), 32));
    return ok ? { ok } : { ok, error: "the signature does not verify" };
  } catch (e) {
    return { ok: false, error: String((e as Error).message ?? e) };
  }
}

/** agora's hash_output_text: what a receipt's text_hash commits to. */
export function hashOutputText(text: string): string {
  return toHex(digestIn(OUTPUT_TEXT_DOMAIN, utf8(text)));
}
