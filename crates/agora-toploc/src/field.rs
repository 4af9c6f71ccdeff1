//! Arithmetic in GF(65497), the prime field TOPLOC uses: the largest prime
//! below 2^16, so every element fits a `u16` and every finite f16 bit
//! pattern (all below 0xFC00) is a distinct element.

/// The field's prime modulus.
pub const MODULUS: u32 = 65_497;

fn add(a: u32, b: u32) -> u32 {
    (a + b) % MODULUS
}

fn sub(a: u32, b: u32) -> u32 {
    (a + MODULUS - b) % MODULUS
}

fn mul(a: u32, b: u32) -> u32 {
    ((u64::from(a) * u64::from(b)) % u64::from(MODULUS)) as u32
}

/// `a^(p-2)`: the inverse of a non-zero element (Fermat).
fn inv(a: u32) -> u32 {
    let (mut base, mut exp, mut acc) = (a, MODULUS - 2, 1u32);
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul(acc, base);
        }
        base = mul(base, base);
        exp >>= 1;
    }
    acc
}

/// Coefficients (lowest degree first) of the unique polynomial of degree
/// `< xs.len()` through the points `(xs[i], ys[i])`, by Newton's divided
/// differences. `xs` must be distinct field elements; `ys` field elements.
pub fn interpolate(xs: &[u32], ys: &[u32]) -> Vec<u32> {
    let n = xs.len();
    debug_assert_eq!(n, ys.len());
    // Divided differences in place: dd[i] becomes f[x_0..x_i].
    let mut dd = ys.to_vec();
    for level in 1..n {
        for i in (level..n).rev() {
            let num = sub(dd[i], dd[i - 1]);
            let den = sub(xs[i], xs[i - level]);
            dd[i] = mul(num, inv(den));
        }
    }
    // Expand the Newton form from the innermost term outwards (Horner):
    // p = dd[n-1]; p = p * (x - x_i) + dd[i] for i = n-2 .. 0.
    let mut coeffs = vec![0u32; n];
    if n == 0 {
        return coeffs;
    }
    coeffs[0] = dd[n - 1];
    let mut degree = 0;
    for i in (0..n - 1).rev() {
        // Multiply by (x - x_i).
        degree += 1;
        for d in (1..=degree).rev() {
            coeffs[d] = sub(coeffs[d - 1], mul(coeffs[d], xs[i]));
        }
        coeffs[0] = sub(0, mul(coeffs[0], xs[i]));
        coeffs[0] = add(coeffs[0], dd[i]);
    }
    coeffs
}

/// Value at `x` of the polynomial with `coeffs` (lowest degree first).
pub fn evaluate(coeffs: &[u32], x: u32) -> u32 {
    coeffs
        .iter()
        .rev()
        .fold(0, |acc, &c| add(mul(acc, x % MODULUS), c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn inverse_is_an_inverse() {
        for a in [1, 2, 3, 1000, MODULUS - 1] {
            assert_eq!(mul(a, inv(a)), 1);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn interpolant_passes_through_its_points(
            points in prop::collection::btree_map(0u32..MODULUS, 0u32..MODULUS, 1..64)
        ) {
            let (xs, ys): (Vec<u32>, Vec<u32>) = points.into_iter().unzip();
            let coeffs = interpolate(&xs, &ys);
            prop_assert_eq!(coeffs.len(), xs.len());
            for (x, y) in xs.iter().zip(&ys) {
                prop_assert_eq!(evaluate(&coeffs, *x), *y);
            }
        }
    }
}
