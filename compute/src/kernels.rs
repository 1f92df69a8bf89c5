//! CPU kernels: the projection matmul, norms, rotary embedding, activations.
//!
//! Every kernel computes each output element with the same sequence of floating-point
//! operations whatever the batch around it: a matmul element is an 8-lane FMA dot product over
//! `k` followed by one fixed horizontal sum, whether it sits in a full register tile or an
//! edge. That is what lets the scheduler mix requests freely and still give each one exactly
//! the tokens it would get alone (BLAS libraries pick different blockings and reduction
//! orders by matrix size, which is why they are not used here).

use rayon::prelude::*;

/// Output rows handled per task: all of a decode batch lands in one block, so each weight
/// row is streamed from memory once per step.
const ROW_BLOCK: usize = 64;
/// Weight rows per task.
const COL_BLOCK: usize = 48;

/// A pointer that rayon tasks may share because each writes a disjoint region.
#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);
// SAFETY: used only to hand disjoint output tiles to parallel tasks (see `matmul_t`).
unsafe impl Send for SyncPtr {}
// SAFETY: as above.
unsafe impl Sync for SyncPtr {}

/// `out[m×n] = x[m×k] · w[n×k]ᵀ` (row-major; `w` in the `[out_features, in_features]` layout
/// checkpoints use). With `accumulate`, adds to `out` instead of overwriting it.
pub fn matmul_t(
    x: &[f32],
    m: usize,
    k: usize,
    w: &[f32],
    n: usize,
    out: &mut [f32],
    accumulate: bool,
) {
    assert_eq!(x.len(), m * k, "matmul_t: x has the wrong length");
    assert_eq!(w.len(), n * k, "matmul_t: w has the wrong length");
    assert_eq!(out.len(), m * n, "matmul_t: out has the wrong length");
    if m == 0 || n == 0 {
        return;
    }
    let row_blocks = m.div_ceil(ROW_BLOCK);
    let col_blocks = n.div_ceil(COL_BLOCK);
    let ptr = SyncPtr(out.as_mut_ptr());
    let work = (m * n * k) as u64;
    let task = |t: usize| {
        let (rb, cb) = (t / col_blocks, t % col_blocks);
        let (r0, r1) = (rb * ROW_BLOCK, ((rb + 1) * ROW_BLOCK).min(m));
        let (c0, c1) = (cb * COL_BLOCK, ((cb + 1) * COL_BLOCK).min(n));
        let p = ptr;
        // SAFETY: task t writes only rows r0..r1 × columns c0..c1 of `out`, and the tasks'
        // tiles partition the matrix, so no two tasks touch the same element.
        unsafe { tile(x, k, w, p.0, n, r0, r1, c0, c1, accumulate) };
    };
    // Tiny products are not worth waking the pool for.
    if work < 1 << 16 {
        (0..row_blocks * col_blocks).for_each(task);
    } else {
        (0..row_blocks * col_blocks).into_par_iter().for_each(task);
    }
}

/// # Safety
/// `out` must point to an `m×n` matrix of which this call alone writes rows `r0..r1`,
/// columns `c0..c1`.
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    x: &[f32],
    k: usize,
    w: &[f32],
    out: *mut f32,
    n: usize,
    r0: usize,
    r1: usize,
    c0: usize,
    c1: usize,
    acc: bool,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if avx2() {
            // SAFETY: the CPU has AVX2 and FMA (checked); the region contract is the caller's.
            unsafe { avx::tile(x, k, w, out, n, r0, r1, c0, c1, acc) };
            return;
        }
    }
    for i in r0..r1 {
        let xr = &x[i * k..(i + 1) * k];
        for j in c0..c1 {
            let d = dot_portable(xr, &w[j * k..(j + 1) * k]);
            // SAFETY: (i, j) lies in this call's region.
            unsafe {
                let o = out.add(i * n + j);
                *o = if acc { *o + d } else { d };
            }
        }
    }
}

/// The same lane structure as the AVX2 path, in plain Rust, for other CPUs.
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            lanes[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut s = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6]))
        + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    s
}

#[cfg(target_arch = "x86_64")]
fn avx2() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    const MR: usize = 4;
    const NR: usize = 3;

    /// Horizontal sum in one fixed order (shared by every tile shape).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps::<1>(v);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
        _mm_cvtss_f32(s)
    }

    /// # Safety
    /// AVX2 and FMA must be present; see `super::tile` for the region contract.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile(
        x: &[f32],
        k: usize,
        w: &[f32],
        out: *mut f32,
        n: usize,
        r0: usize,
        r1: usize,
        c0: usize,
        c1: usize,
        accumulate: bool,
    ) {
        let chunks = k / 8;
        let xp = x.as_ptr();
        let wp = w.as_ptr();
        let finish = |i: usize, j: usize, v: __m256| {
            let mut s = hsum(v);
            for t in chunks * 8..k {
                s += x[i * k + t] * w[j * k + t];
            }
            // SAFETY: (i, j) lies in the caller's region.
            unsafe {
                let o = out.add(i * n + j);
                *o = if accumulate { *o + s } else { s };
            }
        };
        let mut i = r0;
        while i < r1 {
            let rows = (r1 - i).min(MR);
            let mut j = c0;
            while j < c1 {
                let cols = (c1 - j).min(NR);
                if rows == MR && cols == NR {
                    let mut acc = [[_mm256_setzero_ps(); NR]; MR];
                    for c in 0..chunks {
                        // SAFETY: rows i..i+MR and columns j..j+NR are in bounds and c*8+8 ≤ k.
                        unsafe {
                            let wv = [
                                _mm256_loadu_ps(wp.add(j * k + c * 8)),
                                _mm256_loadu_ps(wp.add((j + 1) * k + c * 8)),
                                _mm256_loadu_ps(wp.add((j + 2) * k + c * 8)),
                            ];
                            for (r, row) in acc.iter_mut().enumerate() {
                                let xv = _mm256_loadu_ps(xp.add((i + r) * k + c * 8));
                                for (q, a) in row.iter_mut().enumerate() {
                                    *a = _mm256_fmadd_ps(xv, wv[q], *a);
                                }
                            }
                        }
                    }
                    for (r, row) in acc.iter().enumerate() {
                        for (q, a) in row.iter().enumerate() {
                            finish(i + r, j + q, *a);
                        }
                    }
                } else {
                    for r in 0..rows {
                        for q in 0..cols {
                            let mut a = _mm256_setzero_ps();
                            for c in 0..chunks {
                                // SAFETY: as above, for one row and one column.
                                unsafe {
                                    let xv = _mm256_loadu_ps(xp.add((i + r) * k + c * 8));
                                    let wv = _mm256_loadu_ps(wp.add((j + q) * k + c * 8));
                                    a = _mm256_fmadd_ps(xv, wv, a);
                                }
                            }
                            finish(i + r, j + q, a);
                        }
                    }
                }
                j += cols;
            }
            i += rows;
        }
    }
}

/// RMS norm of each `width`-wide row in place: `x / rms(x) * (offset + w)`; Gemma stores
/// `w` with the 1 taken out (`offset` = 1), the others with it in (`offset` = 0).
pub fn rms_norm(x: &mut [f32], width: usize, w: &[f32], eps: f32, offset: f32) {
    for row in x.chunks_exact_mut(width) {
        let ss: f32 = row.iter().map(|v| v * v).sum::<f32>() / width as f32;
        let inv = 1.0 / (ss + eps).sqrt();
        for (v, g) in row.iter_mut().zip(w) {
            *v = *v * inv * (offset + g);
        }
    }
}

/// Apply rotary embedding (the rotate-half layout transformers uses) to every head of every
/// token: `x` is `[tokens, heads × head_dim]`, `inv_freq` has `head_dim / 2` entries.
pub fn rope(x: &mut [f32], heads: usize, head_dim: usize, positions: &[usize], inv_freq: &[f32]) {
    let half = head_dim / 2;
    let mut cos = vec![0f32; half];
    let mut sin = vec![0f32; half];
    for (t, row) in x.chunks_exact_mut(heads * head_dim).enumerate() {
        let p = positions[t] as f32;
        for i in 0..half {
            let f = p * inv_freq[i];
            cos[i] = f.cos();
            sin[i] = f.sin();
        }
        for h in row.chunks_exact_mut(head_dim) {
            for i in 0..half {
                let (a, b) = (h[i], h[i + half]);
                h[i] = a * cos[i] - b * sin[i];
                h[i + half] = b * cos[i] + a * sin[i];
            }
        }
    }
}

/// `x · sigmoid(x)`.
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// GELU, tanh approximation.
pub fn gelu_tanh(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // sqrt(2/π)
    0.5 * x * (1.0 + (C * (x + 0.044715 * x * x * x)).tanh())
}

/// GELU, exact.
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x / std::f32::consts::SQRT_2))
}

/// erf by Abramowitz–Stegun 7.1.26 refined in f64 (max error ~1e-7, below f32's resolution
/// at the magnitudes activations take).
fn erf(x: f32) -> f32 {
    let x = x as f64;
    let s = x.signum();
    let a = x.abs();
    // W. J. Cody's rational approximation would be tighter; this series is enough for f32.
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-a * a).exp();
    (s * y) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], m: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
        let mut o = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                o[i * n + j] = (0..k)
                    .map(|t| x[i * k + t] as f64 * w[j * k + t] as f64)
                    .sum::<f64>() as f32;
            }
        }
        o
    }

    fn seq(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) - 0.5
            })
            .collect()
    }

    #[test]
    fn matmul_matches_naive_and_is_batch_invariant() {
        for &(m, k, n) in &[(1, 8, 1), (5, 77, 13), (70, 130, 101), (3, 64, 200)] {
            let x = seq(m * k, 1);
            let w = seq(n * k, 2);
            let mut out = vec![0f32; m * n];
            matmul_t(&x, m, k, &w, n, &mut out, false);
            let want = naive(&x, m, k, &w, n);
            for (a, b) in out.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "{m}x{k}x{n}: {a} vs {b}");
            }
            // Each row alone gives bit-identical results to the row inside the batch.
            for i in 0..m {
                let mut one = vec![0f32; n];
                matmul_t(&x[i * k..(i + 1) * k], 1, k, &w, n, &mut one, false);
                assert_eq!(
                    one,
                    out[i * n..(i + 1) * n].to_vec(),
                    "row {i} of {m}x{k}x{n}"
                );
            }
            // Accumulate adds.
            let mut twice = out.clone();
            matmul_t(&x, m, k, &w, n, &mut twice, true);
            for (a, b) in twice.iter().zip(&out) {
                assert!((a - 2.0 * b).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn rope_rotates_pairs() {
        let mut x = vec![1.0, 0.0, 0.0, 1.0];
        rope(&mut x, 1, 4, &[1], &[1.0, 0.0]);
        assert!((x[0] - 1f32.cos()).abs() < 1e-6);
        assert!((x[2] - 1f32.sin()).abs() < 1e-6);
        assert!((x[1] - 0.0).abs() < 1e-6 && (x[3] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn activations() {
        assert!((silu(1.0) - 0.731_058_6).abs() < 1e-6);
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu_tanh(1.0) - 0.841_192).abs() < 1e-5);
    }
}
