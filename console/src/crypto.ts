// ed25519 keys and domain-separated BLAKE3 (derive_key mode), as agora-types uses them.
import * as ed from "@noble/ed25519";
import { blake3 } from "@noble/hashes/blake3.js";
import { sha512 } from "@noble/hashes/sha2.js";
import { utf8 } from "./bytes";

ed.hashes.sha512 = sha512;

/** BLAKE3 of `data` under a derive_key context (agora's `Hash32::digest_in`). */
export function digestIn(domain: string, data: Uint8Array): Uint8Array {
  return blake3(data, { context: utf8(domain) });
}

export function publicKey(seed: Uint8Array): Uint8Array {
  return ed.getPublicKey(seed);
}

export function sign(message: Uint8Array, seed: Uint8Array): Uint8Array {
  return ed.sign(message, seed);
}

/** Strict (RFC 8032) verification, like ed25519-dalek's verify_strict. */
export function verify(signature: Uint8Array, message: Uint8Array, pub: Uint8Array): boolean {
  try {
    return ed.verify(signature, message, pub, { zip215: false });
  } catch {
    return false;
  }
}

export function randomSeed(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}
