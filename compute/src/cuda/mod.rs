//! The GPU backend of the batched LoRA computation (feature `cuda`): Punica-style gather
//! (BGMV, decode) and segmented (SGMV, prefill) kernels written in CUDA C (`lora.cu`),
//! compiled at run time by NVRTC through cudarc, on adapter weights held in one device arena
//! of pages shared with KV blocks ([`crate::pool`]).
//!
//! The driver and NVRTC are loaded with dlopen when first used: a `cuda` build starts on a
//! machine without them and [`probe`] says why the GPU cannot be used, so the caller can fall
//! back to the CPU. Adapters are copied host → device on their own stream from pinned memory;
//! the compute stream waits for an adapter's upload event only before its first use, so
//! uploads overlap the batches that do not need them.
//!
//! What is not here yet: the base model on the GPU (candle's CUDA backend in bf16, paged
//! attention over device KV pages). [`CudaLora`] implements [`LoraKernel`] on host buffers
//! (copying activations in and out, which is what the parity tests use) and
//! [`CudaLora::apply_device`] on device buffers, which is what a GPU forward pass will call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cudarc::driver::{
    CudaContext, CudaEvent, CudaFunction, CudaSlice, CudaStream, DevicePtr, DeviceRepr,
    LaunchConfig, PinnedHostSlice, PushKernelArg, ValidAsZeroBits,
};
use cudarc::nvrtc::{CompileOptions, Ptx, compile_ptx_with_opts};

use crate::lora::{Adapter, LoraKernel, Proj, Segment};
use crate::pool::{Owner, PagePool, pack};
use crate::punica::{LoraPlan, WeightDtype, plan};
use crate::{Error, Result};

/// The kernels' source.
pub const SOURCE: &str = include_str!("lora.cu");

/// Warps per shrink block and rows per segmented tile (as `WARPS`, `TILE` in `lora.cu`).
const WARPS: usize = 4;
const TILE: usize = 8;
const EXPAND_THREADS: usize = 256;
/// Matrices start at multiples of this many bytes within a page.
const ALIGN: usize = 256;

fn dev(e: impl std::fmt::Display) -> Error {
    Error::Device(e.to_string())
}

/// What [`probe`] found.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// CUDA ordinal.
    pub ordinal: usize,
    /// Marketing name.
    pub name: String,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// Device memory.
    pub total_bytes: usize,
    /// Device memory free when probed.
    pub free_bytes: usize,
}

/// Check that GPU `ordinal` can be used: the driver and NVRTC libraries load, the GPU exists
/// and a context opens. Never panics (cudarc panics when a library lacks a symbol; that is
/// caught and reported).
pub fn probe(ordinal: usize) -> Result<DeviceInfo> {
    std::panic::catch_unwind(|| probe_inner(ordinal))
        .unwrap_or_else(|_| Err(Error::Device("the CUDA libraries failed to load".into())))
}

fn probe_inner(ordinal: usize) -> Result<DeviceInfo> {
    // SAFETY: only tries to dlopen the library; no symbol is called.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(Error::Device(
            "the CUDA driver (libcuda.so) is not installed or not on the library path".into(),
        ));
    }
    // SAFETY: as above.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(Error::Device(
            "NVRTC (libnvrtc.so) is not installed or not on the library path".into(),
        ));
    }
    let count = CudaContext::device_count().map_err(dev)?;
    if ordinal >= count.max(0) as usize {
        return Err(Error::Device(format!(
            "there is no GPU {ordinal} ({count} found)"
        )));
    }
    let ctx = CudaContext::new(ordinal).map_err(dev)?;
    let (free_bytes, total_bytes) = ctx.mem_get_info().map_err(dev)?;
    Ok(DeviceInfo {
        ordinal,
        name: ctx.name().map_err(dev)?,
        compute_capability: ctx.compute_capability().map_err(dev)?,
        total_bytes,
        free_bytes,
    })
}

/// The kernel entry points, for every (activation, weight) type pair `lora.cu` instantiates.
pub const ENTRY_POINTS: [&str; 12] = [
    "bgmv_shrink_f32_f32",
    "bgmv_expand_f32_f32",
    "sgmv_shrink_f32_f32",
    "sgmv_expand_f32_f32",
    "bgmv_shrink_f32_bf16",
    "bgmv_expand_f32_bf16",
    "sgmv_shrink_f32_bf16",
    "sgmv_expand_f32_bf16",
    "bgmv_shrink_bf16_bf16",
    "bgmv_expand_bf16_bf16",
    "sgmv_shrink_bf16_bf16",
    "sgmv_expand_bf16_bf16",
];

fn compile() -> Result<Ptx> {
    compile_ptx_with_opts(
        SOURCE,
        CompileOptions {
            name: Some("lora.cu".into()),
            ..Default::default()
        },
    )
    .map_err(|e| Error::Device(format!("NVRTC could not compile lora.cu: {e}")))
}

/// Compile `lora.cu` to PTX with NVRTC. Needs only NVRTC, not a GPU or driver, so a build
/// machine with the `nvidia-cuda-nvrtc` wheel's library on `LD_LIBRARY_PATH` can check the
/// kernels compile. Never panics.
pub fn compile_kernels() -> Result<String> {
    std::panic::catch_unwind(|| {
        // SAFETY: only tries to dlopen the library.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(Error::Device(
                "NVRTC (libnvrtc.so) is not installed or not on the library path".into(),
            ));
        }
        compile().map(|p| p.to_src())
    })
    .unwrap_or_else(|_| Err(Error::Device("NVRTC failed to load".into())))
}

/// How long one host → device adapter load took.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadTiming {
    /// From the call to the weights being on the device: conversion into pinned memory, the
    /// copies and their completion.
    pub total: Duration,
    /// The copies alone (device events around them on the copy stream), ms.
    pub copy_ms: f64,
}

/// Which kernel runs a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gmv {
    /// Gather by row (decode).
    Bgmv,
    /// Segments of rows (prefill).
    Sgmv,
    /// BGMV when runs are short (most rows alone), SGMV otherwise.
    Auto,
}

/// Settings of [`CudaLora`].
#[derive(Debug, Clone)]
pub struct CudaLoraConfig {
    /// CUDA ordinal.
    pub ordinal: usize,
    /// Bytes of the device arena (adapter pages and, later, KV pages).
    pub pool_bytes: usize,
    /// Bytes per page; must hold the largest single LoRA matrix.
    pub page_bytes: usize,
    /// How adapter weights are stored on the device.
    pub weights: WeightDtype,
}

impl Default for CudaLoraConfig {
    fn default() -> Self {
        CudaLoraConfig {
            ordinal: 0,
            pool_bytes: 1 << 30,
            page_bytes: 2 << 20,
            weights: WeightDtype::Bf16,
        }
    }
}

/// Device memory figures.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    /// Bytes per page.
    pub page_bytes: usize,
    /// Pages in the arena.
    pub total_pages: usize,
    /// Pages free.
    pub free_pages: usize,
    /// Pages holding adapter weights.
    pub adapter_pages: usize,
    /// Pages holding KV blocks.
    pub kv_pages: usize,
    /// Adapters resident.
    pub adapters: usize,
    /// Host → device adapter uploads so far.
    pub uploads: u64,
}

struct Kernels {
    bgmv_shrink: CudaFunction,
    bgmv_expand: CudaFunction,
    sgmv_shrink: CudaFunction,
    sgmv_expand: CudaFunction,
}

/// An adapter's weights in the arena.
struct Resident {
    #[allow(
        dead_code,
        reason = "held so the adapter's address cannot be reused as a key"
    )]
    adapter: Arc<Adapter>,
    pages: Vec<u32>,
    /// Per layer, per projection: (A address, B address, rank).
    mats: Vec<[Option<(u64, u64, i32)>; 7]>,
    last_used: u64,
    /// Recorded on the copy stream before the copies (timing enabled).
    copy_start: CudaEvent,
    ready: CudaEvent,
    /// The compute stream already waits on `ready`.
    waited: bool,
}

/// Per-call index and pointer tables, and scratch activations for the host-buffer path.
struct Tables {
    row_slot: CudaSlice<i32>,
    seg_start: CudaSlice<i32>,
    seg_len: CudaSlice<i32>,
    seg_slot: CudaSlice<i32>,
    a_ptr: CudaSlice<u64>,
    b_ptr: CudaSlice<u64>,
    ranks: CudaSlice<i32>,
    v: CudaSlice<f32>,
}

struct Inner {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    copy: Arc<CudaStream>,
    k: Kernels,
    #[allow(
        dead_code,
        reason = "owns the device memory that `arena_ptr` addresses"
    )]
    arena: CudaSlice<u8>,
    arena_ptr: u64,
    pool: PagePool,
    resident: HashMap<usize, Resident>,
    clock: u64,
    staging: Option<PinnedHostSlice<u8>>,
    staging_free: Option<CudaEvent>,
    tables: Tables,
    x: CudaSlice<f32>,
    y: CudaSlice<f32>,
    uploads: u64,
    weights: WeightDtype,
}

/// The batched LoRA kernels on one GPU, with the adapters they need resident in its arena.
pub struct CudaLora {
    inner: Mutex<Inner>,
    info: DeviceInfo,
    cfg: CudaLoraConfig,
}

impl std::fmt::Debug for CudaLora {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaLora")
            .field("info", &self.info)
            .field("cfg", &self.cfg)
            .finish()
    }
}

fn key(a: &Arc<Adapter>) -> usize {
    Arc::as_ptr(a) as usize
}

fn grow<T: DeviceRepr + ValidAsZeroBits>(
    stream: &Arc<CudaStream>,
    buf: &mut CudaSlice<T>,
    n: usize,
) -> Result<()> {
    if buf.len() < n {
        *buf = stream
            .alloc_zeros::<T>(n.next_power_of_two())
            .map_err(dev)?;
    }
    Ok(())
}

fn put<T: DeviceRepr + ValidAsZeroBits>(
    stream: &Arc<CudaStream>,
    buf: &mut CudaSlice<T>,
    src: &[T],
) -> Result<()> {
    if src.is_empty() {
        return Ok(());
    }
    grow(stream, buf, src.len())?;
    stream
        .memcpy_htod(src, &mut buf.slice_mut(0..src.len()))
        .map_err(dev)
}

impl CudaLora {
    /// Open the GPU, compile the kernels with NVRTC and allocate the arena.
    pub fn new(cfg: CudaLoraConfig) -> Result<CudaLora> {
        let info = probe(cfg.ordinal)?;
        let ctx = CudaContext::new(cfg.ordinal).map_err(dev)?;
        let stream = ctx.new_stream().map_err(dev)?;
        let copy = ctx.new_stream().map_err(dev)?;
        let ptx = compile()?;
        let module = ctx.load_module(ptx).map_err(dev)?;
        let suffix = match cfg.weights {
            WeightDtype::F32 => "f32_f32",
            WeightDtype::Bf16 => "f32_bf16",
        };
        let f = |name: &str| {
            module
                .load_function(&format!("{name}_{suffix}"))
                .map_err(dev)
        };
        let k = Kernels {
            bgmv_shrink: f("bgmv_shrink")?,
            bgmv_expand: f("bgmv_expand")?,
            sgmv_shrink: f("sgmv_shrink")?,
            sgmv_expand: f("sgmv_expand")?,
        };
        let pool = PagePool::new(cfg.pool_bytes, cfg.page_bytes);
        let arena_bytes = (pool.total_pages() * pool.page_bytes()).max(1);
        // SAFETY: the arena's contents are only read where an upload has written them.
        let arena = unsafe { stream.alloc::<u8>(arena_bytes) }.map_err(|e| {
            Error::Device(format!(
                "cannot allocate {arena_bytes} bytes of device memory for the adapter/KV pool: {e}"
            ))
        })?;
        let arena_ptr = {
            let (p, _sync) = arena.device_ptr(&stream);
            p
        };
        let z = |n| stream.alloc_zeros::<i32>(n).map_err(dev);
        let tables = Tables {
            row_slot: z(1)?,
            seg_start: z(1)?,
            seg_len: z(1)?,
            seg_slot: z(1)?,
            a_ptr: stream.alloc_zeros::<u64>(1).map_err(dev)?,
            b_ptr: stream.alloc_zeros::<u64>(1).map_err(dev)?,
            ranks: z(1)?,
            v: stream.alloc_zeros::<f32>(1).map_err(dev)?,
        };
        let x = stream.alloc_zeros::<f32>(1).map_err(dev)?;
        let y = stream.alloc_zeros::<f32>(1).map_err(dev)?;
        tracing::info!(
            "GPU {} ({}, compute {}.{}): {:.1} GiB free of {:.1} GiB; LoRA pool {:.2} GiB in {} pages of {} KiB, {:?} weights",
            info.ordinal,
            info.name,
            info.compute_capability.0,
            info.compute_capability.1,
            info.free_bytes as f64 / (1u64 << 30) as f64,
            info.total_bytes as f64 / (1u64 << 30) as f64,
            arena_bytes as f64 / (1u64 << 30) as f64,
            pool.total_pages(),
            pool.page_bytes() >> 10,
            cfg.weights
        );
        Ok(CudaLora {
            inner: Mutex::new(Inner {
                ctx,
                stream,
                copy,
                k,
                arena,
                arena_ptr,
                pool,
                resident: HashMap::new(),
                clock: 0,
                staging: None,
                staging_free: None,
                tables,
                x,
                y,
                uploads: 0,
                weights: cfg.weights,
            }),
            info,
            cfg,
        })
    }

    /// The GPU it runs on.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Its settings.
    pub fn config(&self) -> &CudaLoraConfig {
        &self.cfg
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stream the kernels run on (device buffers passed to [`Self::apply_device`] must be
    /// written on it or synchronised with it).
    pub fn stream(&self) -> Arc<CudaStream> {
        self.lock().stream.clone()
    }

    /// Device memory figures.
    pub fn stats(&self) -> PoolStats {
        let g = self.lock();
        PoolStats {
            page_bytes: g.pool.page_bytes(),
            total_pages: g.pool.total_pages(),
            free_pages: g.pool.free_pages(),
            adapter_pages: g.pool.held(Owner::Adapter),
            kv_pages: g.pool.held(Owner::Kv),
            adapters: g.resident.len(),
            uploads: g.uploads,
        }
    }

    /// Start copying `adapter` to the device (evicting least recently used adapters when
    /// `may_evict` and the pool is short); returns at once. False when it does not fit.
    pub fn preload(&self, adapter: &Arc<Adapter>, may_evict: bool) -> Result<bool> {
        let mut g = self.lock();
        g.ensure_resident(adapter, &[], may_evict)
    }

    /// Copy `adapter` to the device and wait until it is there: the host → device load time
    /// (conversion into pinned memory, the copies, and their completion). Zero when it was
    /// resident already.
    pub fn load_blocking(&self, adapter: &Arc<Adapter>) -> Result<LoadTiming> {
        let t = Instant::now();
        let mut g = self.lock();
        if g.resident.contains_key(&key(adapter)) {
            return Ok(LoadTiming::default());
        }
        if !g.ensure_resident(adapter, &[], true)? {
            return Err(Error::Device(
                "the adapter does not fit in the device pool".into(),
            ));
        }
        let Some(r) = g.resident.get(&key(adapter)) else {
            return Err(Error::Device(
                "internal: uploaded adapter is not resident".into(),
            ));
        };
        r.ready.synchronize().map_err(dev)?;
        let copy_ms = r.copy_start.elapsed_ms(&r.ready).map_err(dev)? as f64;
        Ok(LoadTiming {
            total: t.elapsed(),
            copy_ms,
        })
    }

    /// Drop `adapter` from the device.
    pub fn evict(&self, adapter: &Arc<Adapter>) -> Result<()> {
        self.lock().evict(key(adapter))
    }

    /// `n` pages for KV blocks, evicting least recently used adapters when needed; None when
    /// even that does not free enough.
    pub fn alloc_kv_pages(&self, n: usize) -> Result<Option<Vec<u32>>> {
        let mut g = self.lock();
        loop {
            if let Some(p) = g.pool.alloc(n, Owner::Kv) {
                return Ok(Some(p));
            }
            if !g.evict_lru(&[])? {
                return Ok(None);
            }
        }
    }

    /// Give KV pages back.
    pub fn release_kv_pages(&self, pages: &mut Vec<u32>) {
        self.lock().pool.release(pages, Owner::Kv);
    }

    /// The device address of page `page`.
    pub fn page_address(&self, page: u32) -> u64 {
        let g = self.lock();
        g.arena_ptr + page as u64 * g.pool.page_bytes() as u64
    }

    /// The LoRA term on device buffers: `y` (`rows × out_dim`, f32) += the adapters of
    /// `segments` applied to `x` (`rows × in_dim`, f32), enqueued on [`Self::stream`].
    #[allow(clippy::too_many_arguments)]
    pub fn apply_device(
        &self,
        layer: usize,
        proj: Proj,
        x: &CudaSlice<f32>,
        in_dim: usize,
        y: &mut CudaSlice<f32>,
        out_dim: usize,
        segments: &[Segment],
        kind: Gmv,
    ) -> Result<()> {
        let rows = x.len() / in_dim.max(1);
        let p = plan(layer, proj, segments, rows);
        if p.is_empty() {
            return Ok(());
        }
        let mut g = self.lock();
        g.prepare(layer, proj, &p)?;
        let Inner {
            stream, k, tables, ..
        } = &mut *g;
        launch(stream, k, tables, &p, x, in_dim, y, out_dim, kind)
    }

    /// As [`LoraKernel::apply`], choosing the kernel.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_host(
        &self,
        layer: usize,
        proj: Proj,
        x: &[f32],
        in_dim: usize,
        y: &mut [f32],
        out_dim: usize,
        segments: &[Segment],
        kind: Gmv,
    ) -> Result<()> {
        let rows = x.len() / in_dim.max(1);
        let p = plan(layer, proj, segments, rows);
        if p.is_empty() {
            return Ok(());
        }
        let mut g = self.lock();
        g.prepare(layer, proj, &p)?;
        let Inner {
            stream,
            k,
            tables,
            x: xd,
            y: yd,
            ..
        } = &mut *g;
        put(stream, xd, x)?;
        put(stream, yd, y)?;
        // The kernels index only the first rows × dim elements, so the (possibly longer)
        // scratch buffers serve as they are.
        launch(stream, k, tables, &p, xd, in_dim, yd, out_dim, kind)?;
        stream.memcpy_dtoh(&yd.slice(0..y.len()), y).map_err(dev)?;
        stream.synchronize().map_err(dev)
    }
}

impl LoraKernel for CudaLora {
    fn apply(
        &self,
        layer: usize,
        proj: Proj,
        x: &[f32],
        in_dim: usize,
        y: &mut [f32],
        out_dim: usize,
        segments: &[Segment],
    ) -> Result<()> {
        self.apply_host(layer, proj, x, in_dim, y, out_dim, segments, Gmv::Auto)
    }
}

#[allow(clippy::too_many_arguments)]
fn launch(
    stream: &Arc<CudaStream>,
    k: &Kernels,
    t: &mut Tables,
    p: &LoraPlan<'_>,
    x: &CudaSlice<f32>,
    in_dim: usize,
    y: &mut CudaSlice<f32>,
    out_dim: usize,
    kind: Gmv,
) -> Result<()> {
    let adapted: usize = p.seg_len.iter().map(|&l| l as usize).sum();
    let kind = match kind {
        Gmv::Auto if p.seg_start.len() * 2 > adapted => Gmv::Bgmv,
        Gmv::Auto => Gmv::Sgmv,
        k => k,
    };
    let (in_i, out_i, mr) = (in_dim as i32, out_dim as i32, p.max_rank as i32);
    let rank_blocks = p.max_rank.div_ceil(WARPS) as u32;
    let out_blocks = out_dim.div_ceil(EXPAND_THREADS) as u32;
    let shrink_block = ((32 * WARPS) as u32, 1, 1);
    let expand_block = (EXPAND_THREADS as u32, 1, 1);
    let cfg = |grid, block| LaunchConfig {
        grid_dim: grid,
        block_dim: block,
        shared_mem_bytes: 0,
    };
    match kind {
        Gmv::Bgmv | Gmv::Auto => {
            let rows = p.rows as u32;
            let mut b = stream.launch_builder(&k.bgmv_shrink);
            b.arg(x)
                .arg(&t.row_slot)
                .arg(&t.a_ptr)
                .arg(&t.ranks)
                .arg(&mut t.v)
                .arg(&in_i)
                .arg(&mr);
            // SAFETY: the argument list matches `bgmv_shrink_*` in lora.cu; every index the
            // kernel forms is below the lengths `prepare` sized the tables to, and x holds
            // rows × in_dim elements.
            unsafe { b.launch(cfg((rows, rank_blocks, 1), shrink_block)) }.map_err(dev)?;
            let mut b = stream.launch_builder(&k.bgmv_expand);
            b.arg(y)
                .arg(&t.row_slot)
                .arg(&t.b_ptr)
                .arg(&t.ranks)
                .arg(&t.v)
                .arg(&out_i)
                .arg(&mr);
            // SAFETY: as above, for `bgmv_expand_*`; y holds rows × out_dim elements.
            unsafe { b.launch(cfg((rows, out_blocks, 1), expand_block)) }.map_err(dev)?;
        }
        Gmv::Sgmv => {
            let segs = p.seg_start.len() as u32;
            let tiles = p.max_seg_len.div_ceil(TILE) as u32;
            let mut b = stream.launch_builder(&k.sgmv_shrink);
            b.arg(x)
                .arg(&t.seg_start)
                .arg(&t.seg_len)
                .arg(&t.seg_slot)
                .arg(&t.a_ptr)
                .arg(&t.ranks)
                .arg(&mut t.v)
                .arg(&in_i)
                .arg(&mr);
            // SAFETY: as above, for `sgmv_shrink_*`.
            unsafe { b.launch(cfg((segs, rank_blocks, tiles), shrink_block)) }.map_err(dev)?;
            let mut b = stream.launch_builder(&k.sgmv_expand);
            b.arg(y)
                .arg(&t.seg_start)
                .arg(&t.seg_len)
                .arg(&t.seg_slot)
                .arg(&t.b_ptr)
                .arg(&t.ranks)
                .arg(&t.v)
                .arg(&out_i)
                .arg(&mr);
            // SAFETY: as above, for `sgmv_expand_*`.
            unsafe { b.launch(cfg((segs, out_blocks, tiles), expand_block)) }.map_err(dev)?;
        }
    }
    Ok(())
}

impl Inner {
    /// Make every slot of `p` resident and write the index and pointer tables.
    fn prepare(&mut self, layer: usize, proj: Proj, p: &LoraPlan<'_>) -> Result<()> {
        let keep: Vec<usize> = p.slots.iter().map(|a| key(a)).collect();
        for a in &p.slots {
            if !self.ensure_resident(a, &keep, true)? {
                return Err(Error::Device(format!(
                    "the {} adapters of this batch do not fit in the device pool together",
                    p.slots.len()
                )));
            }
        }
        self.clock += 1;
        let mut a_ptr = Vec::with_capacity(p.slots.len());
        let mut b_ptr = Vec::with_capacity(p.slots.len());
        let mut ranks = Vec::with_capacity(p.slots.len());
        for a in &p.slots {
            let r = self.resident.get_mut(&key(a)).ok_or_else(|| {
                Error::Device("internal: a slot's adapter is not resident".into())
            })?;
            r.last_used = self.clock;
            if !r.waited {
                self.stream.wait(&r.ready).map_err(dev)?;
                r.waited = true;
            }
            let (ap, bp, rank) = r.mats[layer][proj as usize].ok_or_else(|| {
                Error::Device("internal: a planned projection has no device weights".into())
            })?;
            a_ptr.push(ap);
            b_ptr.push(bp);
            ranks.push(rank);
        }
        let s = &self.stream;
        let t = &mut self.tables;
        put(s, &mut t.row_slot, &p.row_slot)?;
        put(s, &mut t.seg_start, &p.seg_start)?;
        put(s, &mut t.seg_len, &p.seg_len)?;
        put(s, &mut t.seg_slot, &p.seg_slot)?;
        put(s, &mut t.a_ptr, &a_ptr)?;
        put(s, &mut t.b_ptr, &b_ptr)?;
        put(s, &mut t.ranks, &ranks)?;
        grow(s, &mut t.v, p.rows * p.max_rank)?;
        Ok(())
    }

    fn evict(&mut self, k: usize) -> Result<()> {
        let Some(mut r) = self.resident.remove(&k) else {
            return Ok(());
        };
        // Later uploads into these pages must not overtake kernels still reading them.
        let done = self.stream.record_event(None).map_err(dev)?;
        self.copy.wait(&done).map_err(dev)?;
        self.pool.release(&mut r.pages, Owner::Adapter);
        Ok(())
    }

    /// Evict the least recently used adapter not in `keep`; false when there is none.
    fn evict_lru(&mut self, keep: &[usize]) -> Result<bool> {
        let victim = self
            .resident
            .iter()
            .filter(|(k, _)| !keep.contains(k))
            .min_by_key(|(_, r)| r.last_used)
            .map(|(k, _)| *k);
        match victim {
            Some(v) => self.evict(v).map(|_| true),
            None => Ok(false),
        }
    }

    /// Upload `a` unless it is resident. False when it cannot fit (without evicting, or
    /// after evicting everything not in `keep`).
    fn ensure_resident(
        &mut self,
        a: &Arc<Adapter>,
        keep: &[usize],
        may_evict: bool,
    ) -> Result<bool> {
        if self.resident.contains_key(&key(a)) {
            return Ok(true);
        }
        let elt = match self.weights {
            WeightDtype::F32 => 4,
            WeightDtype::Bf16 => 2,
        };
        // Matrices in (layer, projection, A then B) order.
        let mut mats = Vec::new();
        for (li, l) in a.layers.iter().enumerate() {
            for (pi, pair) in l.iter().enumerate() {
                if let Some(pair) = pair {
                    mats.push((li, pi, &pair.a));
                    mats.push((li, pi, &pair.b));
                }
            }
        }
        let sizes: Vec<usize> = mats.iter().map(|m| m.2.len() * elt).collect();
        let page_bytes = self.pool.page_bytes();
        let Some((place, npages)) = pack(&sizes, page_bytes, ALIGN) else {
            return Err(Error::Device(format!(
                "an adapter matrix of {} bytes exceeds the {page_bytes}-byte page",
                sizes.iter().max().copied().unwrap_or(0)
            )));
        };
        let mut pages = loop {
            if let Some(p) = self.pool.alloc(npages, Owner::Adapter) {
                break p;
            }
            if !may_evict || !self.evict_lru(keep)? {
                return Ok(false);
            }
        };
        // Pages in ascending order so that neighbours coalesce into one copy.
        pages.sort_unstable();
        let image = npages * page_bytes;
        if let Some(e) = self.staging_free.take() {
            e.synchronize().map_err(dev)?;
        }
        if self.staging.as_ref().is_none_or(|s| s.len() < image) {
            // SAFETY: every byte that is copied to the device is written below first.
            let s = unsafe { self.ctx.alloc_pinned::<u8>(image.next_power_of_two()) };
            self.staging = Some(s.map_err(dev)?);
        }
        let Some(staging) = self.staging.as_mut() else {
            return Err(Error::Device("internal: no staging buffer".into()));
        };
        let host = staging.as_mut_slice().map_err(dev)?;
        let mut dev_mats: Vec<[Option<(u64, u64, i32)>; 7]> = vec![[None; 7]; a.layers.len()];
        for (i, ((li, pi, w), &(page, off))) in mats.iter().zip(&place).enumerate() {
            let dst = &mut host[page * page_bytes + off..page * page_bytes + off + sizes[i]];
            match self.weights {
                WeightDtype::F32 => {
                    for (d, v) in dst.chunks_exact_mut(4).zip(w.iter()) {
                        d.copy_from_slice(&v.to_le_bytes());
                    }
                }
                WeightDtype::Bf16 => {
                    for (d, v) in dst.chunks_exact_mut(2).zip(w.iter()) {
                        d.copy_from_slice(&half::bf16::from_f32(*v).to_bits().to_le_bytes());
                    }
                }
            }
            let addr = self.arena_ptr + (pages[page] as u64) * page_bytes as u64 + off as u64;
            let rank = a.layers[*li][*pi].as_ref().map_or(0, |p| p.rank) as i32;
            let e = dev_mats[*li][*pi].get_or_insert((0, 0, rank));
            if i % 2 == 0 {
                e.0 = addr;
            } else {
                e.1 = addr;
            }
        }
        // One copy per run of consecutive pages.
        let timed = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
        let copy_start = self.copy.record_event(timed).map_err(dev)?;
        let cu = self.copy.cu_stream();
        let mut i = 0;
        while i < npages {
            let mut j = i + 1;
            while j < npages && pages[j] == pages[j - 1] + 1 {
                j += 1;
            }
            let dst = self.arena_ptr + pages[i] as u64 * page_bytes as u64;
            // SAFETY: dst..dst + (j-i) pages lies in the arena (pages come from its pool), and
            // the pinned source stays untouched until `staging_free` has completed.
            unsafe {
                cudarc::driver::result::memcpy_htod_async(
                    dst,
                    &host[i * page_bytes..j * page_bytes],
                    cu,
                )
            }
            .map_err(dev)?;
            i = j;
        }
        let ready = self.copy.record_event(timed).map_err(dev)?;
        self.staging_free = Some(self.copy.record_event(None).map_err(dev)?);
        self.uploads += 1;
        self.clock += 1;
        self.resident.insert(
            key(a),
            Resident {
                adapter: a.clone(),
                pages,
                mats: dev_mats,
                last_used: self.clock,
                copy_start,
                ready,
                waited: false,
            },
        );
        Ok(true)
    }
}
