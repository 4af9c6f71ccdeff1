#!/usr/bin/env python3
"""Independent computation of the console's fixed test vectors.

Requires: pip install blake3 pynacl

1. Signed Transfer (borsh SignedTransaction) for
   seed = 32 bytes of 0x07, chain_id "agora-devnet", nonce 3,
   to = 32 bytes of 0x09, amount 12345.
   Layout (crates/agora-types/src/tx.rs, borsh):
     u32le(len(chain_id)) chain_id | from[32] | u64le(nonce) |
     u8(0 = TxKind::Transfer) | to[32] | u64le(amount)  ++  signature[64]
   signature = ed25519(seed, blake3_derive_key("agora 2026 transaction signature v1", borsh(tx)))
2. Key-request digest: blake3_derive_key("agora 2026 gateway key request v1", utf8(request))
   for the fixed request string below, and its ed25519 signature with the same seed.
"""
import struct

import blake3
from nacl.signing import SigningKey

SEED = bytes([7] * 32)
TO = bytes([9] * 32)
CHAIN = b"agora-devnet"


def derive(context: str, data: bytes) -> bytes:
    return blake3.blake3(data, derive_key_context=context).digest()


key = SigningKey(SEED)
account = bytes(key.verify_key)
tx = (
    struct.pack("<I", len(CHAIN)) + CHAIN + account + struct.pack("<Q", 3)
    + bytes([0]) + TO + struct.pack("<Q", 12345)
)
signing = derive("agora 2026 transaction signature v1", tx)
sig = key.sign(signing).signature
signed = tx + sig
print("account      ", account.hex())
print("tx_borsh     ", tx.hex())
print("signing_bytes", signing.hex())
print("signed_tx    ", signed.hex())
print("tx_id        ", derive("agora 2026 transaction id v1", signed).hex())

REQUEST = (
    '{"owner":"' + account.hex() + '","name":"console test","issued_at_ms":1700000000000,'
    '"total":1000}'
)
digest = derive("agora 2026 gateway key request v1", REQUEST.encode())
print("key_request  ", REQUEST)
print("key_digest   ", digest.hex())
print("key_signature", key.sign(digest).signature.hex())

# 3. Withdrawal digest: blake3_derive_key("agora 2026 gateway withdrawal v1", utf8(request)).
WITHDRAWAL = '{"owner":"' + account.hex() + '","amount":4000,"issued_at_ms":1700000000000}'
wdigest = derive("agora 2026 gateway withdrawal v1", WITHDRAWAL.encode())
print("withdrawal   ", WITHDRAWAL)
print("withdraw_dig ", wdigest.hex())
print("withdraw_sig ", key.sign(wdigest).signature.hex())
