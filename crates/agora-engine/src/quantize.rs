//! Re-quantizing a GGUF with llama.cpp's own `llama_model_quantize`: the
//! adversarial test provider serves such copies while claiming the original,
//! and verification tests measure how well audits tell them apart.

use std::ffi::CString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use llama_cpp_sys_2 as sys;

/// Weight formats a model can be re-quantized to (llama.cpp's `llama_ftype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum QuantType {
    /// 4-bit, one scale per block of 32.
    Q4_0,
    /// 4-bit, scale and minimum per block of 32.
    Q4_1,
    /// 5-bit, one scale per block.
    Q5_0,
    /// 5-bit, scale and minimum per block.
    Q5_1,
    /// 8-bit, one scale per block.
    Q8_0,
    /// 2-bit k-quant.
    Q2_K,
    /// 3-bit k-quant, medium.
    Q3_K_M,
    /// 4-bit k-quant, medium.
    Q4_K_M,
    /// 5-bit k-quant, medium.
    Q5_K_M,
    /// 6-bit k-quant.
    Q6_K,
}

impl QuantType {
    /// Every supported type, for help texts and errors.
    pub const ALL: [QuantType; 10] = [
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q5_1,
        QuantType::Q8_0,
        QuantType::Q2_K,
        QuantType::Q3_K_M,
        QuantType::Q4_K_M,
        QuantType::Q5_K_M,
        QuantType::Q6_K,
    ];

    /// The name llama.cpp and GGUF metadata use, e.g. `Q4_0`.
    pub fn name(self) -> &'static str {
        match self {
            QuantType::Q4_0 => "Q4_0",
            QuantType::Q4_1 => "Q4_1",
            QuantType::Q5_0 => "Q5_0",
            QuantType::Q5_1 => "Q5_1",
            QuantType::Q8_0 => "Q8_0",
            QuantType::Q2_K => "Q2_K",
            QuantType::Q3_K_M => "Q3_K_M",
            QuantType::Q4_K_M => "Q4_K_M",
            QuantType::Q5_K_M => "Q5_K_M",
            QuantType::Q6_K => "Q6_K",
        }
    }

    fn ftype(self) -> sys::llama_ftype {
        match self {
            QuantType::Q4_0 => sys::LLAMA_FTYPE_MOSTLY_Q4_0,
            QuantType::Q4_1 => sys::LLAMA_FTYPE_MOSTLY_Q4_1,
            QuantType::Q5_0 => sys::LLAMA_FTYPE_MOSTLY_Q5_0,
            QuantType::Q5_1 => sys::LLAMA_FTYPE_MOSTLY_Q5_1,
            QuantType::Q8_0 => sys::LLAMA_FTYPE_MOSTLY_Q8_0,
            QuantType::Q2_K => sys::LLAMA_FTYPE_MOSTLY_Q2_K,
            QuantType::Q3_K_M => sys::LLAMA_FTYPE_MOSTLY_Q3_K_M,
            QuantType::Q4_K_M => sys::LLAMA_FTYPE_MOSTLY_Q4_K_M,
            QuantType::Q5_K_M => sys::LLAMA_FTYPE_MOSTLY_Q5_K_M,
            QuantType::Q6_K => sys::LLAMA_FTYPE_MOSTLY_Q6_K,
        }
    }
}

impl fmt::Display for QuantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for QuantType {
    type Err = QuantizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        QuantType::ALL
            .into_iter()
            .find(|q| q.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| QuantizeError::UnknownType(s.to_string()))
    }
}

/// Why a model could not be quantized.
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    /// The type name is not one [`QuantType`] knows.
    #[error("unknown quantization type {0:?} (use one of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K_M, Q4_K_M, Q5_K_M, Q6_K)")]
    UnknownType(String),
    /// The source is missing or a path cannot be passed to llama.cpp.
    #[error("cannot quantize {path}: {reason}")]
    BadPath {
        /// The offending path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// llama.cpp refused or failed (not a GGUF, unsupported tensors, disk full...).
    #[error("llama.cpp could not quantize {src} to {quant} (see the llama.cpp log for why)")]
    Failed {
        /// The source model.
        src: PathBuf,
        /// The target type.
        quant: QuantType,
    },
}

/// Write a copy of the GGUF `src` with its weights quantized to `quant` at
/// `dst` (overwritten). Already-quantized sources are dequantized first, as
/// llama.cpp's `llama-quantize --allow-requantize` does. Blocks for the whole
/// conversion (about a second for a 135M-parameter model).
pub fn quantize(src: &Path, dst: &Path, quant: QuantType) -> Result<(), QuantizeError> {
    let bad = |path: &Path, reason: &str| QuantizeError::BadPath {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    if !src.is_file() {
        return Err(bad(src, "no such file"));
    }
    if src == dst {
        return Err(bad(dst, "the destination is the source"));
    }
    let c_path = |p: &Path| {
        p.to_str()
            .and_then(|s| CString::new(s).ok())
            .ok_or_else(|| bad(p, "the path is not UTF-8 or contains a NUL byte"))
    };
    let (c_src, c_dst) = (c_path(src)?, c_path(dst)?);
    crate::llama_backend().map_err(|reason| bad(src, &reason))?;
    // SAFETY: plain C calls; the parameter struct comes from llama.cpp's own
    // defaults, and both strings outlive the call.
    let status = unsafe {
        let mut params = sys::llama_model_quantize_default_params();
        params.ftype = quant.ftype();
        params.allow_requantize = true;
        params.nthread = 0;
        sys::llama_model_quantize(c_src.as_ptr(), c_dst.as_ptr(), &params)
    };
    if status != 0 {
        let _ = std::fs::remove_file(dst);
        return Err(QuantizeError::Failed {
            src: src.to_path_buf(),
            quant,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_round_trip_and_unknown_names_are_refused() {
        for q in QuantType::ALL {
            assert_eq!(q.name().parse::<QuantType>().unwrap(), q);
            assert_eq!(q.name().to_lowercase().parse::<QuantType>().unwrap(), q);
        }
        let err = "Q3_X".parse::<QuantType>().unwrap_err();
        assert!(err.to_string().contains("Q3_X"), "{err}");
        assert!(err.to_string().contains("Q8_0"), "{err}");
    }

    #[test]
    fn missing_and_non_gguf_sources_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.gguf");
        let missing = quantize(&dir.path().join("none.gguf"), &out, QuantType::Q8_0);
        assert!(
            matches!(&missing, Err(QuantizeError::BadPath { reason, .. }) if reason == "no such file"),
            "{missing:?}"
        );
        let junk = dir.path().join("junk.gguf");
        std::fs::write(&junk, b"not a gguf file").unwrap();
        let failed = quantize(&junk, &out, QuantType::Q8_0);
        assert!(
            matches!(failed, Err(QuantizeError::Failed { .. })),
            "{failed:?}"
        );
        assert!(!out.exists(), "no partial output is left behind");
    }
}
