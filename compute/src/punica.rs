//! Batched multi-LoRA in the form the GPU kernels take it, and a plain-Rust reference of
//! their semantics.
//!
//! The GPU backend does not walk [`Segment`]s one by one as [`crate::lora::CpuLora`] does: a
//! batch becomes a [`LoraPlan`] — a table of the distinct adapted projections in the batch
//! (*slots*, each with its own rank) plus either a per-row slot index (BGMV, the decode
//! kernel: each row gathers its adapter, `-1` = none) or runs of rows sharing a slot (SGMV, the
//! prefill kernel). [`bgmv_ref`] and [`sgmv_ref`] compute exactly what the CUDA kernels in
//! `cuda/lora.cu` compute (shrink `v = x · Aᵀ` in f32, then expand `y += v · Bᵀ`, with the
//! weights optionally rounded to bf16 as the device stores them), so the plan and the
//! semantics are pinned down by tests that run in the default build, and the GPU parity tests
//! only have to show that the device agrees with this reference and with `CpuLora`.

use std::collections::HashMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::lora::{Adapter, LoraPair, Proj, Segment};

/// How adapter weights are stored for the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightDtype {
    /// As loaded (f32).
    F32,
    /// Rounded to bf16 (half the memory and upload time; f32 accumulation).
    Bf16,
}

/// One batch of one (layer, projection), laid out for the gather and segmented kernels.
#[derive(Debug)]
pub struct LoraPlan<'a> {
    /// Distinct adapters of the batch that adapt this projection, one slot each.
    pub slots: Vec<&'a Arc<Adapter>>,
    /// Their weights at this (layer, projection), by slot.
    pub pairs: Vec<&'a LoraPair>,
    /// Per batch row: its slot, or -1 when the row runs without an adapter (or its adapter
    /// does not adapt this projection).
    pub row_slot: Vec<i32>,
    /// Runs of consecutive rows sharing a slot (rows without one are left out): first row.
    pub seg_start: Vec<i32>,
    /// Run lengths.
    pub seg_len: Vec<i32>,
    /// Run slots.
    pub seg_slot: Vec<i32>,
    /// Largest rank over the slots (0 when there are none).
    pub max_rank: usize,
    /// Longest run.
    pub max_seg_len: usize,
    /// Rows in the batch.
    pub rows: usize,
}

impl LoraPlan<'_> {
    /// True when no row of the batch is adapted at this projection.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// Lay out `segments` (covering `rows` rows) for the kernels at (layer, projection).
pub fn plan<'a>(layer: usize, proj: Proj, segments: &'a [Segment], rows: usize) -> LoraPlan<'a> {
    let mut p = LoraPlan {
        slots: Vec::new(),
        pairs: Vec::new(),
        row_slot: vec![-1; rows],
        seg_start: Vec::new(),
        seg_len: Vec::new(),
        seg_slot: Vec::new(),
        max_rank: 0,
        max_seg_len: 0,
        rows,
    };
    // Adapter address → slot (a decode batch can hold hundreds of distinct adapters).
    let mut index: HashMap<usize, usize> = HashMap::new();
    for s in segments {
        let Some(ad) = &s.adapter else { continue };
        let Some(pair) = ad.layers.get(layer).and_then(|l| l[proj as usize].as_ref()) else {
            continue;
        };
        let slot = *index.entry(Arc::as_ptr(ad) as usize).or_insert_with(|| {
            p.slots.push(ad);
            p.pairs.push(pair);
            p.max_rank = p.max_rank.max(pair.rank);
            p.slots.len() - 1
        });
        let end = (s.start + s.len).min(rows);
        for r in &mut p.row_slot[s.start.min(end)..end] {
            *r = slot as i32;
        }
        // The engine already merges neighbouring rows of one adapter; merge again in case a
        // caller did not, so a run is as long as it can be.
        match (p.seg_start.last(), p.seg_len.last_mut(), p.seg_slot.last()) {
            (Some(&st), Some(len), Some(&sl))
                if sl == slot as i32 && (st + *len) as usize == s.start =>
            {
                *len += (end - s.start.min(end)) as i32;
            }
            _ => {
                p.seg_start.push(s.start as i32);
                p.seg_len.push((end - s.start.min(end)) as i32);
                p.seg_slot.push(slot as i32);
            }
        }
    }
    p.max_seg_len = p.seg_len.iter().map(|&l| l as usize).max().unwrap_or(0);
    p
}

fn weight(w: f32, dtype: WeightDtype) -> f32 {
    match dtype {
        WeightDtype::F32 => w,
        WeightDtype::Bf16 => half::bf16::from_f32(w).to_f32(),
    }
}

/// `y[row] += B · (A · x[row])` for one row with one pair, as the kernels do it.
fn one_row(pair: &LoraPair, x: &[f32], y: &mut [f32], v: &mut Vec<f32>, dtype: WeightDtype) {
    let in_dim = x.len();
    v.clear();
    v.extend((0..pair.rank).map(|r| {
        let a = &pair.a[r * in_dim..(r + 1) * in_dim];
        x.iter()
            .zip(a)
            .map(|(x, a)| x * weight(*a, dtype))
            .sum::<f32>()
    }));
    for (j, yj) in y.iter_mut().enumerate() {
        let b = &pair.b[j * pair.rank..(j + 1) * pair.rank];
        *yj += v
            .iter()
            .zip(b)
            .map(|(v, b)| v * weight(*b, dtype))
            .sum::<f32>();
    }
}

/// The gather kernel's semantics: each row applies the adapter its `row_slot` names.
pub fn bgmv_ref(
    plan: &LoraPlan<'_>,
    x: &[f32],
    in_dim: usize,
    y: &mut [f32],
    out_dim: usize,
    dtype: WeightDtype,
) {
    let mut v = Vec::new();
    for (row, &slot) in plan.row_slot.iter().enumerate() {
        let Ok(slot) = usize::try_from(slot) else {
            continue;
        };
        one_row(
            plan.pairs[slot],
            &x[row * in_dim..(row + 1) * in_dim],
            &mut y[row * out_dim..(row + 1) * out_dim],
            &mut v,
            dtype,
        );
    }
}

/// The segmented kernel's semantics: each run of rows applies its run's adapter.
pub fn sgmv_ref(
    plan: &LoraPlan<'_>,
    x: &[f32],
    in_dim: usize,
    y: &mut [f32],
    out_dim: usize,
    dtype: WeightDtype,
) {
    let mut v = Vec::new();
    for ((&start, &len), &slot) in plan.seg_start.iter().zip(&plan.seg_len).zip(&plan.seg_slot) {
        let pair = plan.pairs[slot as usize];
        for row in start as usize..(start + len) as usize {
            one_row(
                pair,
                &x[row * in_dim..(row + 1) * in_dim],
                &mut y[row * out_dim..(row + 1) * out_dim],
                &mut v,
                dtype,
            );
        }
    }
}

/// A synthetic adapter of rank `rank` on `targets` for a model whose projections have the
/// given `(in, out)` dimensions (by [`Proj`] index), for parity tests and benchmarks. Weights
/// are uniform in ±`1/sqrt(in)` (A) and ±0.5 (B), so the LoRA term is of the order of `x`.
pub fn random_adapter(
    layers: usize,
    dims: [(usize, usize); 7],
    rank: usize,
    targets: &[Proj],
    seed: u64,
) -> Adapter {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut bytes = 0;
    let layers: Vec<[Option<LoraPair>; 7]> = (0..layers)
        .map(|_| {
            let mut l: [Option<LoraPair>; 7] = Default::default();
            for &p in targets {
                let (i, o) = dims[p as usize];
                let sa = 1.0 / (i as f32).sqrt();
                let a: Vec<f32> = (0..rank * i).map(|_| rng.random_range(-sa..sa)).collect();
                let b: Vec<f32> = (0..o * rank).map(|_| rng.random_range(-0.5..0.5)).collect();
                bytes += (a.len() + b.len()) * 4;
                l[p as usize] = Some(LoraPair {
                    a,
                    b,
                    rank,
                    scale: 1.0,
                });
            }
            l
        })
        .collect();
    Adapter {
        layers,
        max_rank: rank,
        targets: targets.to_vec(),
        bytes,
    }
}

/// The adapter with every weight rounded to bf16 (what the device holds in
/// [`WeightDtype::Bf16`]), so f32 references can be compared with bf16 kernels tightly.
pub fn rounded_to_bf16(a: &Adapter) -> Adapter {
    let round =
        |v: &[f32]| -> Vec<f32> { v.iter().map(|w| weight(*w, WeightDtype::Bf16)).collect() };
    Adapter {
        layers: a
            .layers
            .iter()
            .map(|l| {
                l.each_ref().map(|p| {
                    p.as_ref().map(|p| LoraPair {
                        a: round(&p.a),
                        b: round(&p.b),
                        rank: p.rank,
                        scale: p.scale,
                    })
                })
            })
            .collect(),
        max_rank: a.max_rank,
        targets: a.targets.clone(),
        bytes: a.bytes,
    }
}

/// Random segments over `rows` rows: runs of 1..=`max_run` rows, each on one of `adapters` or
/// (with probability `empty`) on none; neighbouring runs may repeat an adapter.
pub fn random_segments(
    rng: &mut StdRng,
    rows: usize,
    adapters: &[Arc<Adapter>],
    max_run: usize,
    empty: f64,
) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows {
        let len = rng.random_range(1..=max_run.max(1)).min(rows - start);
        let adapter = if adapters.is_empty() || rng.random_bool(empty) {
            None
        } else {
            Some(adapters[rng.random_range(0..adapters.len())].clone())
        };
        out.push(Segment {
            start,
            len,
            adapter,
        });
        start += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lora::{CpuLora, LoraKernel};

    fn close(got: &[f32], want: &[f32], tol: f32, what: &str) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tol * (1.0 + w.abs()),
                "{what}: element {i}: {g} vs {w}"
            );
        }
    }

    /// Both kernel semantics agree with `CpuLora` over ranks 1–128, batches 1–256, mixed
    /// adapters, repeated adapters and rows without an adapter.
    #[test]
    fn reference_kernels_match_cpu_lora() {
        let (in_dim, out_dim) = (67, 45); // not multiples of 8 or 32: the edges matter
        let dims = [(in_dim, out_dim); 7];
        let mut rng = StdRng::seed_from_u64(6);
        for (case, &rows) in [1usize, 2, 7, 16, 33, 64, 255, 256].iter().enumerate() {
            let ranks = [1, 2, 3, 8, 16, 31, 64, 128];
            let adapters: Vec<Arc<Adapter>> = ranks
                .iter()
                .enumerate()
                .map(|(i, &r)| {
                    // Some adapters leave V alone: their rows must be skipped there.
                    let targets: &[Proj] = if i % 3 == 0 {
                        &[Proj::Q, Proj::O]
                    } else {
                        &Proj::ALL
                    };
                    Arc::new(random_adapter(
                        2,
                        dims,
                        r,
                        targets,
                        100 * case as u64 + i as u64,
                    ))
                })
                .collect();
            for max_run in [1, 5, rows] {
                let segs = random_segments(&mut rng, rows, &adapters, max_run, 0.2);
                let x: Vec<f32> = (0..rows * in_dim)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                let y0: Vec<f32> = (0..rows * out_dim)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                for (layer, proj) in [(0, Proj::Q), (1, Proj::V), (1, Proj::Down)] {
                    let mut want = y0.clone();
                    CpuLora
                        .apply(layer, proj, &x, in_dim, &mut want, out_dim, &segs)
                        .expect("cpu lora");
                    let p = plan(layer, proj, &segs, rows);
                    let mut g = y0.clone();
                    bgmv_ref(&p, &x, in_dim, &mut g, out_dim, WeightDtype::F32);
                    close(&g, &want, 1e-4, &format!("bgmv rows {rows} run {max_run}"));
                    let mut s = y0.clone();
                    sgmv_ref(&p, &x, in_dim, &mut s, out_dim, WeightDtype::F32);
                    close(&s, &want, 1e-4, &format!("sgmv rows {rows} run {max_run}"));
                    // Rows without an adapter are untouched, bit for bit.
                    for (r, &slot) in p.row_slot.iter().enumerate() {
                        if slot < 0 {
                            assert_eq!(
                                g[r * out_dim..(r + 1) * out_dim],
                                y0[r * out_dim..(r + 1) * out_dim]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn plan_layout() {
        let dims = [(8, 8); 7];
        let a = Arc::new(random_adapter(1, dims, 4, &[Proj::Q], 1));
        let b = Arc::new(random_adapter(1, dims, 16, &Proj::ALL, 2));
        let seg = |start, len, ad: Option<&Arc<Adapter>>| Segment {
            start,
            len,
            adapter: ad.cloned(),
        };
        let segs = [
            seg(0, 2, Some(&a)),
            seg(2, 1, None),
            seg(3, 1, Some(&b)),
            seg(4, 2, Some(&b)),
            seg(6, 1, Some(&a)),
        ];
        let p = plan(0, Proj::Q, &segs, 7);
        assert_eq!(p.slots.len(), 2, "a repeated adapter takes one slot");
        assert_eq!(p.row_slot, [0, 0, -1, 1, 1, 1, 0]);
        assert_eq!(p.seg_start, [0, 3, 6]);
        assert_eq!(
            p.seg_len,
            [2, 3, 1],
            "neighbouring runs of one adapter merge"
        );
        assert_eq!(p.seg_slot, [0, 1, 0]);
        assert_eq!((p.max_rank, p.max_seg_len), (16, 3));
        // At K only b is adapted.
        let p = plan(0, Proj::K, &segs, 7);
        assert_eq!(p.row_slot, [-1, -1, -1, 0, 0, 0, -1]);
        assert_eq!(p.max_rank, 16);
        assert!(plan(0, Proj::K, &segs[..2], 7).is_empty());
    }

    #[test]
    fn bf16_weights_are_the_rounded_weights() {
        let dims = [(40, 24); 7];
        let ad = Arc::new(random_adapter(1, dims, 8, &Proj::ALL, 3));
        let rounded = Arc::new(rounded_to_bf16(&ad));
        let mut rng = StdRng::seed_from_u64(9);
        let rows = 5;
        let x: Vec<f32> = (0..rows * 40)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let segs = [Segment {
            start: 0,
            len: rows,
            adapter: Some(ad.clone()),
        }];
        let rsegs = [Segment {
            start: 0,
            len: rows,
            adapter: Some(rounded),
        }];
        let mut g = vec![0f32; rows * 24];
        bgmv_ref(
            &plan(0, Proj::Up, &segs, rows),
            &x,
            40,
            &mut g,
            24,
            WeightDtype::Bf16,
        );
        let mut want = vec![0f32; rows * 24];
        bgmv_ref(
            &plan(0, Proj::Up, &rsegs, rows),
            &x,
            40,
            &mut want,
            24,
            WeightDtype::F32,
        );
        assert_eq!(g, want);
    }
}
