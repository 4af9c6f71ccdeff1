// Unit tests of the encoders and checks, pinned to vectors computed
// independently by tests/vector.py (Python blake3 + PyNaCl).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fromHex, toHex } from "../src/bytes";
import { publicKey } from "../src/crypto";
import { parseJsonExact } from "../src/json";
import { hashOutputText, verifyReceipt } from "../src/receipt";
import { encodeTransfer, keyRequestDigest, signKeyRequest, signTransfer, signWithdrawal, txSigningBytes } from "../src/tx";

const SEED = new Uint8Array(32).fill(7);
const TO = "09".repeat(32);
const ACCOUNT = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
const SIGNED_TRANSFER =
  "0c00000061676f72612d6465766e6574ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c0300000000000000000909090909090909090909090909090909090909090909090909090909090909393000000000000" +
  "0c874f42576a0fd87e2f40ad26a8c686a4e5f4ef355ce0760e94f0dc7871292371e9f56d430fb75faa09b997cc92c17f159acc9888f6de3fdeb1fe030be34290f";
const TX_ID = "ea2ded469f6654f15cdb5d633688e56cc18b5cc8919868f983e326b57e657352";
const KEY_REQUEST =
  '{"owner":"ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c","name":"console test","issued_at_ms":1700000000000,"total":1000}';
const KEY_DIGEST = "89d81dc309dde649109ccfeeb177e6c1838eaf115a1ccd60096fe27eaa565e00";
const WITHDRAWAL =
  '{"owner":"ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c","amount":4000,"issued_at_ms":1700000000000}';
const WITHDRAW_SIGNATURE =
  "2dbfd5c6ad48d0f230e63114d47e6794132df038a0afe88511bc482eb899e8a844da98e2ef19e75812e8578e712f87f10a761d3032f7098284910eb95508280f";
const KEY_SIGNATURE =
  "adde8519a50425a79eb851a268efd4c043f4c3215f119b05502fb94859834bc02d004298ea6f342a5f9b9d4db898049efc8ae654f712fab8ea6981acf0eafc04";

test("account id is the ed25519 public key of the seed", () => {
  assert.equal(toHex(publicKey(SEED)), ACCOUNT);
});

test("signed Transfer matches the fixed vector", () => {
  const signed = signTransfer({ chainId: "agora-devnet", nonce: 3n, to: TO, amount: 12345n }, SEED);
  assert.equal(signed.hex, SIGNED_TRANSFER);
  assert.equal(signed.id, TX_ID);
  const body = encodeTransfer({ chainId: "agora-devnet", from: ACCOUNT, nonce: 3, to: TO, amount: 12345 });
  assert.equal(toHex(txSigningBytes(body)), "3bef51d3382b45871464ac4abf335e7afe563e513d42c04d7c8fb16d1043ae6a");
});

test("key request digest and signature match the fixed vector", () => {
  assert.equal(toHex(keyRequestDigest(KEY_REQUEST)), KEY_DIGEST);
  const s = signKeyRequest({ owner: ACCOUNT, name: "console test", issued_at_ms: 1700000000000, total: 1000 }, SEED);
  assert.equal(s.request, KEY_REQUEST);
  assert.equal(s.signature, KEY_SIGNATURE);
});

test("a withdrawal's text and signature match the fixed vector", () => {
  const w = signWithdrawal({ owner: ACCOUNT, amount: 4000n, issued_at_ms: 1700000000000 }, SEED);
  assert.equal(w.request, WITHDRAWAL);
  assert.equal(w.signature, WITHDRAW_SIGNATURE);
});

test("a real devnet receipt verifies, a tampered one does not", () => {
  const rec = parseJsonExact(readFileSync(new URL("../receipt.json", import.meta.url), "utf8")) as any;
  assert.equal(typeof rec.receipt.receipt.params.seed, "bigint");
  assert.deepEqual(verifyReceipt(rec.receipt), { ok: true });
  const bad = parseJsonExact(readFileSync(new URL("../receipt.json", import.meta.url), "utf8")) as any;
  bad.receipt.receipt.cost = 2;
  assert.equal(verifyReceipt(bad.receipt).ok, false);
});

test("exact JSON keeps big integers and parses the rest like JSON.parse", () => {
  const t = '{"a":[1,2.5,-3e2,"x\\"y",true,false,null],"b":18446744073709551615}';
  const v = parseJsonExact(t) as any;
  assert.equal(v.b, 18446744073709551615n);
  assert.deepEqual(v.a, JSON.parse(t).a);
});

test("output text hash is derive_key blake3", () => {
  assert.equal(hashOutputText("").length, 64);
  assert.notEqual(hashOutputText("a"), hashOutputText("b"));
  assert.deepEqual(fromHex("0a0b"), Uint8Array.of(10, 11));
});
