//! Reading a GGUF file's metadata without loading the model: what a model's
//! registry entry says about it (architecture, quantization, licence) and
//! the hash of its tokenizer, so that a file is described on chain as it is.
//!
//! Only the header is read (GGUF v2 and v3: magic, version, counts, then the
//! key-value pairs); every length is checked against what is left of the
//! file, so a malformed or hostile file is an error, never a huge allocation.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use agora_types::Hash32;

/// Domain of [`GgufMeta::tokenizer_hash`].
pub const TOKENIZER_HASH_DOMAIN: &str = "agora 2026 gguf tokenizer v1";

/// Most key-value pairs a header may declare.
const MAX_PAIRS: u64 = 1 << 16;

/// What the metadata says about a model file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GgufMeta {
    /// `general.architecture`, e.g. `llama`.
    pub architecture: String,
    /// The weights' quantization, from `general.file_type` (e.g. `Q4_1`).
    pub quantization: String,
    /// `general.name`, if the file has one.
    pub name: Option<String>,
    /// `general.license`, if the file has one.
    pub license: Option<String>,
    /// BLAKE3 (derive-key [`TOKENIZER_HASH_DOMAIN`]) over every `tokenizer.*`
    /// pair in key order, each as: key length (u64 LE), key, value type
    /// (u32 LE), the value's bytes as the file stores them. Two files with
    /// this hash tokenize (and template chats) alike.
    pub tokenizer_hash: Hash32,
}

/// Why a GGUF header could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be read.
    #[error("reading the GGUF file: {0}")]
    Io(#[from] io::Error),
    /// The file is not GGUF, or a version this reader does not know.
    #[error("not a GGUF v2/v3 file: {0}")]
    NotGguf(String),
    /// The header is malformed.
    #[error("malformed GGUF header: {0}")]
    Malformed(String),
}

/// A value's raw bytes and, for the keys the entry needs, its reading.
struct Value {
    kind: u32,
    raw: Vec<u8>,
}

/// Reads the header, keeping count of the bytes the file has left.
struct Header<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Header<R> {
    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, GgufError> {
        if n > self.left {
            return Err(GgufError::Malformed(format!(
                "{what} claims {n} bytes, {} are left",
                self.left
            )));
        }
        let mut buf = vec![0; n as usize];
        self.inner.read_exact(&mut buf)?;
        self.left -= n;
        Ok(buf)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        let b = self.bytes(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }

    fn string(&mut self, what: &str) -> Result<Vec<u8>, GgufError> {
        let len = self.u64(what)?;
        self.bytes(len, what)
    }

    /// The raw bytes of one value of type `kind` (arrays whole).
    fn value(&mut self, kind: u32, key: &str, out: &mut Vec<u8>) -> Result<(), GgufError> {
        match kind {
            0 | 1 | 7 => out.extend(self.bytes(1, key)?),
            2 | 3 => out.extend(self.bytes(2, key)?),
            4..=6 => out.extend(self.bytes(4, key)?),
            10..=12 => out.extend(self.bytes(8, key)?),
            8 => {
                let s = self.string(key)?;
                out.extend((s.len() as u64).to_le_bytes());
                out.extend(s);
            }
            9 => {
                let elem = self.u32(key)?;
                let count = self.u64(key)?;
                if elem == 9 {
                    return Err(GgufError::Malformed(format!("{key}: nested arrays")));
                }
                out.extend(elem.to_le_bytes());
                out.extend(count.to_le_bytes());
                for _ in 0..count {
                    if self.left == 0 {
                        return Err(GgufError::Malformed(format!("{key}: array past the end")));
                    }
                    self.value(elem, key, out)?;
                }
            }
            other => {
                return Err(GgufError::Malformed(format!(
                    "{key}: unknown value type {other}"
                )))
            }
        }
        Ok(())
    }
}

/// Read the metadata of the GGUF file at `path`.
pub fn read_meta(path: &Path) -> Result<GgufMeta, GgufError> {
    let file = File::open(path)?;
    let left = file.metadata()?.len();
    let mut h = Header {
        inner: BufReader::with_capacity(1 << 20, file),
        left,
    };
    let magic = h
        .bytes(4, "magic")
        .map_err(|_| GgufError::NotGguf("too short".into()))?;
    if magic != b"GGUF" {
        return Err(GgufError::NotGguf("no GGUF magic".into()));
    }
    let version = h.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::NotGguf(format!("version {version}")));
    }
    let _tensors = h.u64("tensor count")?;
    let pairs = h.u64("pair count")?;
    if pairs > MAX_PAIRS {
        return Err(GgufError::Malformed(format!("{pairs} key-value pairs")));
    }
    let mut values = BTreeMap::new();
    for _ in 0..pairs {
        let key = String::from_utf8(h.string("key")?)
            .map_err(|_| GgufError::Malformed("a key is not UTF-8".into()))?;
        let kind = h.u32(&key)?;
        let mut raw = Vec::new();
        h.value(kind, &key, &mut raw)?;
        values.insert(key, Value { kind, raw });
    }
    describe(&values)
}

/// A string value's text (the raw bytes after the length).
fn text(values: &BTreeMap<String, Value>, key: &str) -> Option<String> {
    let v = values.get(key).filter(|v| v.kind == 8)?;
    String::from_utf8(v.raw.get(8..)?.to_vec()).ok()
}

fn describe(values: &BTreeMap<String, Value>) -> Result<GgufMeta, GgufError> {
    let architecture = text(values, "general.architecture")
        .ok_or_else(|| GgufError::Malformed("no general.architecture".into()))?;
    let quantization = match values.get("general.file_type") {
        Some(v) if v.kind == 4 || v.kind == 5 => {
            let n = u32::from_le_bytes(v.raw[..4].try_into().unwrap_or([0; 4]));
            file_type_name(n)
        }
        _ => "unknown".into(),
    };
    let mut hasher = blake3::Hasher::new_derive_key(TOKENIZER_HASH_DOMAIN);
    for (key, v) in values.range("tokenizer.".to_string()..) {
        if !key.starts_with("tokenizer.") {
            break;
        }
        hasher.update(&(key.len() as u64).to_le_bytes());
        hasher.update(key.as_bytes());
        hasher.update(&v.kind.to_le_bytes());
        hasher.update(&v.raw);
    }
    Ok(GgufMeta {
        architecture,
        quantization,
        name: text(values, "general.name"),
        license: text(values, "general.license"),
        tokenizer_hash: Hash32(*hasher.finalize().as_bytes()),
    })
}

/// llama.cpp's name for a `general.file_type` (`llama_ftype`) number.
pub fn file_type_name(file_type: u32) -> String {
    let name = match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        32 => "BF16",
        other => return format!("ftype {other}"),
    };
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF v3 header with `pairs` (key, type, raw value bytes).
    fn header(pairs: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        out.extend((pairs.len() as u64).to_le_bytes());
        for (key, kind, raw) in pairs {
            out.extend((key.len() as u64).to_le_bytes());
            out.extend(key.as_bytes());
            out.extend(kind.to_le_bytes());
            out.extend(raw);
        }
        out
    }

    fn string(s: &str) -> Vec<u8> {
        let mut out = (s.len() as u64).to_le_bytes().to_vec();
        out.extend(s.as_bytes());
        out
    }

    fn read(bytes: &[u8]) -> Result<GgufMeta, GgufError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        std::fs::write(&path, bytes).unwrap();
        read_meta(&path)
    }

    #[test]
    fn the_entry_fields_and_the_tokenizer_hash_come_from_the_header() {
        let tokens = {
            let mut v = 8u32.to_le_bytes().to_vec();
            v.extend(2u64.to_le_bytes());
            v.extend(string("a"));
            v.extend(string("b"));
            v
        };
        let pairs = [
            ("general.architecture", 8, string("llama")),
            ("general.file_type", 4, 3u32.to_le_bytes().to_vec()),
            ("general.license", 8, string("MIT")),
            ("tokenizer.ggml.tokens", 9, tokens.clone()),
            ("tokenizer.ggml.model", 8, string("gpt2")),
        ];
        let meta = read(&header(&pairs)).unwrap();
        assert_eq!(meta.architecture, "llama");
        assert_eq!(meta.quantization, "Q4_1");
        assert_eq!(meta.license.as_deref(), Some("MIT"));
        assert_eq!(meta.name, None);
        // The hash covers the tokenizer pairs in key order, and only them.
        let mut h = blake3::Hasher::new_derive_key(TOKENIZER_HASH_DOMAIN);
        for (key, kind, raw) in [
            ("tokenizer.ggml.model", 8u32, string("gpt2")),
            ("tokenizer.ggml.tokens", 9, tokens),
        ] {
            h.update(&(key.len() as u64).to_le_bytes());
            h.update(key.as_bytes());
            h.update(&kind.to_le_bytes());
            h.update(&raw);
        }
        assert_eq!(meta.tokenizer_hash, Hash32(*h.finalize().as_bytes()));
        let mut other = pairs.to_vec();
        other[2] = ("general.license", 8, string("Apache-2.0"));
        assert_eq!(
            read(&header(&other)).unwrap().tokenizer_hash,
            meta.tokenizer_hash
        );
        other[4] = ("tokenizer.ggml.model", 8, string("llama"));
        assert_ne!(
            read(&header(&other)).unwrap().tokenizer_hash,
            meta.tokenizer_hash
        );
    }

    #[test]
    fn malformed_headers_are_errors_not_allocations() {
        assert!(matches!(read(b"GGML"), Err(GgufError::NotGguf(_))));
        assert!(matches!(read(b""), Err(GgufError::NotGguf(_))));
        let mut v1 = header(&[]);
        v1[4] = 1;
        assert!(matches!(read(&v1), Err(GgufError::NotGguf(_))));
        // A string claiming more bytes than the file has.
        let mut huge = header(&[("general.architecture", 8, string("llama"))]);
        let at = huge.len() - 5 - 8;
        huge[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(read(&huge), Err(GgufError::Malformed(_))));
        // An array claiming 2^60 elements.
        let mut arr = 4u32.to_le_bytes().to_vec();
        arr.extend((1u64 << 60).to_le_bytes());
        let r = read(&header(&[("tokenizer.x", 9, arr)]));
        assert!(matches!(r, Err(GgufError::Malformed(_))), "{r:?}");
        // An unknown type, too many pairs, no architecture.
        assert!(read(&header(&[("k", 99, vec![])])).is_err());
        let mut many = header(&[]);
        many[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(read(&many).is_err());
        assert!(matches!(read(&header(&[])), Err(GgufError::Malformed(_))));
    }
}
