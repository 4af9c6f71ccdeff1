// Transactions the wallet signs, byte for byte as crates/agora-types/src/tx.rs:
// borsh(Transaction { chain_id, from, nonce, kind }) with TxKind::Transfer = variant 0,
// signed over blake3 derive_key("agora 2026 transaction signature v1", borsh(tx)).
import { Writer } from "./borsh";
import { concat, toHex, utf8 } from "./bytes";
import { digestIn, publicKey, sign } from "./crypto";

export const TX_SIGNING_DOMAIN = "agora 2026 transaction signature v1";
export const TX_ID_DOMAIN = "agora 2026 transaction id v1";
export const KEY_REQUEST_DOMAIN = "agora 2026 gateway key request v1";
export const WITHDRAW_DOMAIN = "agora 2026 gateway withdrawal v1";

export interface Transfer {
  chainId: string;
  from: string; // account hex
  nonce: bigint | number;
  to: string; // account hex
  amount: bigint | number;
}

/** borsh(Transaction) of a Transfer. */
export function encodeTransfer(t: Transfer): Uint8Array {
  return new Writer()
    .string(t.chainId)
    .hex32(t.from)
    .u64(t.nonce)
    .u8(0) // TxKind::Transfer
    .hex32(t.to)
    .u64(t.amount)
    .finish();
}

export function txSigningBytes(txBorsh: Uint8Array): Uint8Array {
  return digestIn(TX_SIGNING_DOMAIN, txBorsh);
}

export interface SignedTx {
  hex: string; // borsh(SignedTransaction): the tx then the 64-byte signature
  id: string; // blake3 derive_key("agora 2026 transaction id v1", borsh(SignedTransaction))
}

/** Sign a transfer with the 32-byte ed25519 seed of `from`. */
export function signTransfer(t: Omit<Transfer, "from">, seed: Uint8Array): SignedTx {
  const from = toHex(publicKey(seed));
  const body = encodeTransfer({ ...t, from });
  const signature = sign(txSigningBytes(body), seed);
  const signed = concat(body, signature);
  return { hex: toHex(signed), id: toHex(digestIn(TX_ID_DOMAIN, signed)) };
}

/** The 32 bytes a wallet signs to ask the gateway for an API key (`POST /v1/keys`). */
export function keyRequestDigest(request: string): Uint8Array {
  return digestIn(KEY_REQUEST_DOMAIN, utf8(request));
}

export interface KeyRequest {
  owner: string;
  name: string;
  issued_at_ms: number;
  total?: number;
  daily?: number;
}

/** The JSON text of a key request, fields in a fixed order, and its signature. */
export function signKeyRequest(req: KeyRequest, seed: Uint8Array): { request: string; signature: string } {
  const o: Record<string, unknown> = { owner: req.owner, name: req.name, issued_at_ms: req.issued_at_ms };
  if (req.total !== undefined) o.total = req.total;
  if (req.daily !== undefined) o.daily = req.daily;
  const request = JSON.stringify(o);
  return { request, signature: toHex(sign(keyRequestDigest(request), seed)) };
}

/** Sign a withdrawal of `amount` from the wallet's custodial account back to it (`POST /v1/keys/withdraw`). */
export function signWithdrawal(
  w: { owner: string; amount: bigint; issued_at_ms: number },
  seed: Uint8Array,
): { request: string; signature: string } {
  const request = `{"owner":"${w.owner}","amount":${w.amount.toString()},"issued_at_ms":${w.issued_at_ms}}`;
  return { request, signature: toHex(sign(digestIn(WITHDRAW_DOMAIN, utf8(request)), seed)) };
}
