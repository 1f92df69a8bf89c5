// Batched multi-LoRA kernels, compiled at run time by NVRTC (no nvcc at build time, no CUDA
// headers: bf16 is handled as raw 16-bit words).
//
// y[row] += B_s · (A_s · x[row]) for the slot s of each row, in two steps:
//   shrink:  v[row, r] = sum_k x[row, k] · A_s[r, k]     (f32 accumulation)
//   expand:  y[row, j] += sum_r v[row, r] · B_s[j, r]   (B already holds the LoRA scale)
// A_s is [rank_s × in] and B_s is [out × rank_s], row-major, at the device addresses in the
// per-slot pointer tables; ranks differ per slot (heterogeneous ranks in one batch). v is
// [rows × max_rank] scratch.
//
// BGMV (decode): `row_slot[row]` picks the slot of each row, -1 = no adapter.
// SGMV (prefill): runs of rows (seg_start, seg_len, seg_slot) share a slot; a block handles
// TILE rows of one run so each weight element it loads serves TILE rows.
//
// The semantics are those of `punica::bgmv_ref` / `punica::sgmv_ref` in the Rust crate.

typedef unsigned short bf16_t;

#define WARPS 4
#define TILE 8
#define EXPAND_THREADS 256
#define MAX_RANK 256

__device__ __forceinline__ float ld(const float* p, long long i) { return p[i]; }
__device__ __forceinline__ float ld(const bf16_t* p, long long i) {
    return __uint_as_float(((unsigned int)p[i]) << 16);
}
__device__ __forceinline__ void add_to(float* p, long long i, float v) { p[i] += v; }
__device__ __forceinline__ void add_to(bf16_t* p, long long i, float v) {
    // Round to nearest even (finite values; activations are finite).
    unsigned int u = __float_as_uint(ld(p, i) + v);
    u += 0x7fffu + ((u >> 16) & 1u);
    p[i] = (bf16_t)(u >> 16);
}
__device__ __forceinline__ float warp_sum(float v) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// grid (rows, ceil(max_rank / WARPS)), block 32·WARPS: one warp per (row, r).
template <typename X, typename W>
__device__ void bgmv_shrink(const X* x, const int* row_slot, const unsigned long long* a_ptr,
                            const int* ranks, float* v, int in_dim, int max_rank) {
    int row = blockIdx.x;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int r = blockIdx.y * WARPS + warp;
    int slot = row_slot[row];
    if (slot < 0 || r >= ranks[slot]) return;
    const W* a = (const W*)a_ptr[slot] + (long long)r * in_dim;
    const X* xr = x + (long long)row * in_dim;
    float acc = 0.f;
    for (int k = lane; k < in_dim; k += 32) acc += ld(xr, k) * ld(a, k);
    acc = warp_sum(acc);
    if (lane == 0) v[(long long)row * max_rank + r] = acc;
}

// grid (rows, ceil(out / EXPAND_THREADS)), block EXPAND_THREADS: one thread per (row, j).
template <typename Y, typename W>
__device__ void bgmv_expand(Y* y, const int* row_slot, const unsigned long long* b_ptr,
                            const int* ranks, const float* v, int out_dim, int max_rank) {
    __shared__ float vs[MAX_RANK];
    int row = blockIdx.x;
    int slot = row_slot[row];
    if (slot < 0) return;  // uniform over the block
    int rank = ranks[slot];
    for (int r = threadIdx.x; r < rank; r += blockDim.x) vs[r] = v[(long long)row * max_rank + r];
    __syncthreads();
    int j = blockIdx.y * EXPAND_THREADS + threadIdx.x;
    if (j >= out_dim) return;
    const W* b = (const W*)b_ptr[slot] + (long long)j * rank;
    float acc = 0.f;
    for (int r = 0; r < rank; r++) acc += vs[r] * ld(b, r);
    add_to(y, (long long)row * out_dim + j, acc);
}

// grid (segments, ceil(max_rank / WARPS), ceil(max_seg_len / TILE)), block 32·WARPS.
template <typename X, typename W>
__device__ void sgmv_shrink(const X* x, const int* seg_start, const int* seg_len,
                            const int* seg_slot, const unsigned long long* a_ptr, const int* ranks,
                            float* v, int in_dim, int max_rank) {
    int seg = blockIdx.x;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int r = blockIdx.y * WARPS + warp;
    int slot = seg_slot[seg];
    int t0 = blockIdx.z * TILE;
    int len = seg_len[seg];
    if (t0 >= len || r >= ranks[slot]) return;
    int n = min(TILE, len - t0);
    long long row0 = (long long)seg_start[seg] + t0;
    const W* a = (const W*)a_ptr[slot] + (long long)r * in_dim;
    float acc[TILE];
    #pragma unroll
    for (int t = 0; t < TILE; t++) acc[t] = 0.f;
    for (int k = lane; k < in_dim; k += 32) {
        float w = ld(a, k);
        #pragma unroll
        for (int t = 0; t < TILE; t++)
            if (t < n) acc[t] += ld(x, (row0 + t) * in_dim + k) * w;
    }
    #pragma unroll
    for (int t = 0; t < TILE; t++) {
        float s = warp_sum(acc[t]);
        if (lane == 0 && t < n) v[(row0 + t) * max_rank + r] = s;
    }
}

// grid (segments, ceil(out / EXPAND_THREADS), ceil(max_seg_len / TILE)), block EXPAND_THREADS.
template <typename Y, typename W>
__device__ void sgmv_expand(Y* y, const int* seg_start, const int* seg_len, const int* seg_slot,
                            const unsigned long long* b_ptr, const int* ranks, const float* v,
                            int out_dim, int max_rank) {
    __shared__ float vs[TILE][MAX_RANK];
    int seg = blockIdx.x;
    int slot = seg_slot[seg];
    int t0 = blockIdx.z * TILE;
    int len = seg_len[seg];
    if (t0 >= len) return;  // uniform over the block
    int n = min(TILE, len - t0);
    int rank = ranks[slot];
    long long row0 = (long long)seg_start[seg] + t0;
    for (int i = threadIdx.x; i < n * rank; i += blockDim.x)
        vs[i / rank][i % rank] = v[(row0 + i / rank) * max_rank + i % rank];
    __syncthreads();
    int j = blockIdx.y * EXPAND_THREADS + threadIdx.x;
    if (j >= out_dim) return;
    const W* b = (const W*)b_ptr[slot] + (long long)j * rank;
    float acc[TILE];
    #pragma unroll
    for (int t = 0; t < TILE; t++) acc[t] = 0.f;
    for (int r = 0; r < rank; r++) {
        float w = ld(b, r);
        #pragma unroll
        for (int t = 0; t < TILE; t++) acc[t] += vs[t][r] * w;
    }
    for (int t = 0; t < n; t++) add_to(y, (row0 + t) * out_dim + j, acc[t]);
}

// Entry points: <activations>_<weights>.
#define INSTANCES(NAME, X, W)                                                                    \
extern "C" __global__ void bgmv_shrink_##NAME(const X* x, const int* row_slot,                   \
        const unsigned long long* a_ptr, const int* ranks, float* v, int in_dim, int max_rank) { \
    bgmv_shrink<X, W>(x, row_slot, a_ptr, ranks, v, in_dim, max_rank);                           \
}                                                                                                \
extern "C" __global__ void bgmv_expand_##NAME(X* y, const int* row_slot,                         \
        const unsigned long long* b_ptr, const int* ranks, const float* v, int out_dim,          \
        int max_rank) {                                                                          \
    bgmv_expand<X, W>(y, row_slot, b_ptr, ranks, v, out_dim, max_rank);                          \
}                                                                                                \
extern "C" __global__ void sgmv_shrink_##NAME(const X* x, const int* seg_start,                  \
        const int* seg_len, const int* seg_slot, const unsigned long long* a_ptr,                \
        const int* ranks, float* v, int in_dim, int max_rank) {                                  \
    sgmv_shrink<X, W>(x, seg_start, seg_len, seg_slot, a_ptr, ranks, v, in_dim, max_rank);       \
}                                                                                                \
extern "C" __global__ void sgmv_expand_##NAME(X* y, const int* seg_start, const int* seg_len,    \
        const int* seg_slot, const unsigned long long* b_ptr, const int* ranks, const float* v,  \
        int out_dim, int max_rank) {                                                             \
    sgmv_expand<X, W>(y, seg_start, seg_len, seg_slot, b_ptr, ranks, v, out_dim, max_rank);      \
}

INSTANCES(f32_f32, float, float)
INSTANCES(f32_bf16, float, bf16_t)
INSTANCES(bf16_bf16, bf16_t, bf16_t)
