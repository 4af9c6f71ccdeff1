//! Vector arithmetic for embeddings: unit-length scaling (what
//! sentence-transformers' `Normalize` does) and cosine similarity (how an
//! auditor compares a provider's vector with its own).

/// `v` scaled to unit L2 norm; `None` if its norm is zero or not finite.
pub fn normalized(v: &[f32]) -> Option<Vec<f32>> {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    (norm.is_finite() && norm > 0.0)
        .then(|| v.iter().map(|x| (f64::from(*x) / norm) as f32).collect())
}

/// Cosine similarity of two vectors, to compare a provider's embedding with a
/// re-computed one; `None` if their lengths differ or either has no length.
pub fn cosine(a: &[f32], b: &[f32]) -> Option<f32> {
    if a.len() != b.len() {
        return None;
    }
    let (mut dot, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    let denom = (aa * bb).sqrt();
    (denom.is_finite() && denom > 0.0).then(|| (dot / denom) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_vectors_have_unit_length_and_keep_direction() {
        let v = normalized(&[3.0, 4.0]).unwrap();
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
        assert_eq!(normalized(&[0.0, 0.0]), None);
        assert_eq!(normalized(&[f32::NAN, 1.0]), None);
    }

    #[test]
    fn cosine_measures_angle_and_refuses_mismatched_vectors() {
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]).unwrap() - 1.0).abs() < 1e-7);
        assert!(cosine(&[1.0, 0.0], &[0.0, 5.0]).unwrap().abs() < 1e-7);
        assert!((cosine(&[1.0, 1.0], &[-1.0, -1.0]).unwrap() + 1.0).abs() < 1e-7);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), None);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), None);
    }
}
