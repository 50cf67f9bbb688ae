// Attention in the FlashAttention style: out = softmax(scale q k^T [+ causal mask]) v
// without ever storing the (Tq, Tk) score matrix.
//
// Layout: q (BH, Tq, D), k and v (BH, Tk, D), out (BH, Tq, D), lse (BH, Tq), contiguous,
// BH = batch * heads. Causal masking is top-left aligned (key j is visible to query i
// iff j <= i), as in PyTorch's is_causal. The host compiles one variant per head size:
//   HEAD_DIM            D
//   FWD_BM, FWD_BN      forward tiles: queries per block (= threads), keys per step
//   BWD_B               backward tile (queries and keys), = threads per block
// Each thread owns one query row (forward, dq) or one key row (dk, dv); the block streams
// tiles of the other operand through shared memory. Rows a thread reads alone are padded
// to D + 1 words (no bank conflicts); rows every thread reads at once are broadcasts.
//
// Forward (online softmax): per query row keep the running max m, the running sum
// l = sum_j exp(s_j - m) and acc = sum_j exp(s_j - m) v_j; a new tile with max m' scales
// l and acc by exp(m - m') first. At the end out = acc / l and lse = m + log l is saved.
//
// Backward (FlashAttention-2): with p_ij = exp(s_ij - lse_i) recomputed from q, k, lse and
// delta_i = sum_d dout_id out_id (computed by the host):
//   dv_j = sum_i p_ij dout_i
//   ds_ij = p_ij (dout_i . v_j - delta_i)
//   dk_j = scale sum_i ds_ij q_i,   dq_i = scale sum_j ds_ij k_j
// dk/dv (one thread per key) and dq (one thread per query) are two kernels, so no
// thread ever adds into another's result: no atomics, deterministic sums.
#include "common.cuh"

#ifndef HEAD_DIM
#define HEAD_DIM 64
#endif
#ifndef FWD_BM
#define FWD_BM 64
#endif
#ifndef FWD_BN
#define FWD_BN 32
#endif
#ifndef BWD_B
#define BWD_B 32
#endif

// Rows [row0, row0 + ROWS) of src (n_rows, HEAD_DIM) into dst[ROWS][STRIDE] times
// `factor`, zero past n_rows. All threads of the block take part (coalesced reads).
#define LOAD_TILE(dst, STRIDE, ROWS, src, row0, n_rows, factor)                          \
    for (int e_ = threadIdx.x; e_ < (ROWS) * HEAD_DIM; e_ += blockDim.x) {               \
        const int r_ = e_ / HEAD_DIM, d_ = e_ % HEAD_DIM;                                \
        const int row_ = (row0) + r_;                                                    \
        dst[r_ * (STRIDE) + d_] = row_ < (n_rows)                                        \
            ? (src)[(long long)row_ * HEAD_DIM + d_] * (factor) : (scalar_t)0;            \
    }

extern "C" __global__ void attention_forward(
        const scalar_t* __restrict__ q, const scalar_t* __restrict__ k,
        const scalar_t* __restrict__ v, scalar_t* __restrict__ out,
        scalar_t* __restrict__ lse, int tq, int tk, scalar_t scale, int causal) {
    __shared__ scalar_t sq[FWD_BM * (HEAD_DIM + 1)];
    __shared__ scalar_t sk[FWD_BN * HEAD_DIM];
    __shared__ scalar_t sv[FWD_BN * HEAD_DIM];
    const long long bh = blockIdx.x;
    const int row0 = blockIdx.y * FWD_BM;
    const int i = row0 + threadIdx.x;
    const scalar_t* kb = k + bh * tk * HEAD_DIM;
    const scalar_t* vb = v + bh * tk * HEAD_DIM;
    const scalar_t* my_q = sq + threadIdx.x * (HEAD_DIM + 1);

    LOAD_TILE(sq, HEAD_DIM + 1, FWD_BM, q + bh * tq * HEAD_DIM, row0, tq, scale);
    scalar_t acc[HEAD_DIM];
#pragma unroll
    for (int d = 0; d < HEAD_DIM; ++d) acc[d] = 0;
    scalar_t m = neg_inf(), l = 0;

    // Keys past the last query row of this block are all masked under causal.
    const int kv_end = causal ? min(tk, row0 + FWD_BM) : tk;
    for (int kv0 = 0; kv0 < kv_end; kv0 += FWD_BN) {
        __syncthreads();  // the previous tile has been used (and sq is loaded)
        LOAD_TILE(sk, HEAD_DIM, FWD_BN, kb, kv0, tk, (scalar_t)1);
        LOAD_TILE(sv, HEAD_DIM, FWD_BN, vb, kv0, tk, (scalar_t)1);
        __syncthreads();
        if (i >= tq) continue;
        scalar_t s[FWD_BN];
        scalar_t tile_max = neg_inf();
#pragma unroll
        for (int jj = 0; jj < FWD_BN; ++jj) {
            const int j = kv0 + jj;
            scalar_t dot = 0;
#pragma unroll
            for (int d = 0; d < HEAD_DIM; ++d) dot += my_q[d] * sk[jj * HEAD_DIM + d];
            s[jj] = (j < tk && (!causal || j <= i)) ? dot : neg_inf();
            tile_max = math_max(tile_max, s[jj]);
        }
        const scalar_t m_new = math_max(m, tile_max);
        if (m_new == neg_inf()) continue;  // every key so far masked: nothing to add
        const scalar_t alpha = math_exp(m - m_new);  // 0 while m is -inf
        l *= alpha;
#pragma unroll
        for (int d = 0; d < HEAD_DIM; ++d) acc[d] *= alpha;
#pragma unroll
        for (int jj = 0; jj < FWD_BN; ++jj) {
            const scalar_t p = math_exp(s[jj] - m_new);
            l += p;
#pragma unroll
            for (int d = 0; d < HEAD_DIM; ++d) acc[d] += p * sv[jj * HEAD_DIM + d];
        }
        m = m_new;
    }
    if (i >= tq) return;
    const scalar_t inv_l = (scalar_t)1 / l;
    scalar_t* o = out + (bh * tq + i) * HEAD_DIM;
#pragma unroll
    for (int d = 0; d < HEAD_DIM; ++d) o[d] = acc[d] * inv_l;
    lse[bh * tq + i] = m + math_log(l);
}

extern "C" __global__ void attention_backward_dkdv(
        const scalar_t* __restrict__ q, const scalar_t* __restrict__ k,
        const scalar_t* __restrict__ v, const scalar_t* __restrict__ dout,
        const scalar_t* __restrict__ lse, const scalar_t* __restrict__ delta,
        scalar_t* __restrict__ dk, scalar_t* __restrict__ dv,
        int tq, int tk, scalar_t scale, int causal) {
    __shared__ scalar_t sk[BWD_B * (HEAD_DIM + 1)];
    __shared__ scalar_t sv[BWD_B * (HEAD_DIM + 1)];
    __shared__ scalar_t sq[BWD_B * HEAD_DIM];
    __shared__ scalar_t sdo[BWD_B * HEAD_DIM];
    __shared__ scalar_t slse[BWD_B];
    __shared__ scalar_t sdelta[BWD_B];
    const long long bh = blockIdx.x;
    const int col0 = blockIdx.y * BWD_B;
    const int j = col0 + threadIdx.x;
    const scalar_t* qb = q + bh * tq * HEAD_DIM;
    const scalar_t* dob = dout + bh * tq * HEAD_DIM;
    const scalar_t* my_k = sk + threadIdx.x * (HEAD_DIM + 1);
    const scalar_t* my_v = sv + threadIdx.x * (HEAD_DIM + 1);

    LOAD_TILE(sk, HEAD_DIM + 1, BWD_B, k + bh * tk * HEAD_DIM, col0, tk, (scalar_t)1);
    LOAD_TILE(sv, HEAD_DIM + 1, BWD_B, v + bh * tk * HEAD_DIM, col0, tk, (scalar_t)1);
    scalar_t dk_acc[HEAD_DIM], dv_acc[HEAD_DIM];
#pragma unroll
    for (int d = 0; d < HEAD_DIM; ++d) dk_acc[d] = dv_acc[d] = 0;

    // Under causal, queries before this block's first key see none of its keys.
    const int q_begin = causal ? (col0 / BWD_B) * BWD_B : 0;
    for (int q0 = q_begin; q0 < tq; q0 += BWD_B) {
        __syncthreads();
        LOAD_TILE(sq, HEAD_DIM, BWD_B, qb, q0, tq, (scalar_t)1);
        LOAD_TILE(sdo, HEAD_DIM, BWD_B, dob, q0, tq, (scalar_t)1);
        if (threadIdx.x < BWD_B) {
            const int row = q0 + threadIdx.x;
            slse[threadIdx.x] = row < tq ? lse[bh * tq + row] : (scalar_t)0;
            sdelta[threadIdx.x] = row < tq ? delta[bh * tq + row] : (scalar_t)0;
        }
        __syncthreads();
        if (j >= tk) continue;
#pragma unroll 4
        for (int ii = 0; ii < BWD_B; ++ii) {
            const int i = q0 + ii;
            if (i >= tq || (causal && j > i)) continue;
            const scalar_t* qi = sq + ii * HEAD_DIM;
            const scalar_t* doi = sdo + ii * HEAD_DIM;
            scalar_t s = 0, dp = 0;
#pragma unroll
            for (int d = 0; d < HEAD_DIM; ++d) {
                s += qi[d] * my_k[d];
                dp += doi[d] * my_v[d];
            }
            const scalar_t p = math_exp(s * scale - slse[ii]);
            const scalar_t ds = p * (dp - sdelta[ii]);
#pragma unroll
            for (int d = 0; d < HEAD_DIM; ++d) {
                dv_acc[d] += p * doi[d];
                dk_acc[d] += ds * qi[d];
            }
        }
    }
    if (j >= tk) return;
    scalar_t* dkj = dk + (bh * tk + j) * HEAD_DIM;
    scalar_t* dvj = dv + (bh * tk + j) * HEAD_DIM;
#pragma unroll
    for (int d = 0; d < HEAD_DIM; ++d) {
        dkj[d] = dk_acc[d] * scale;
        dvj[d] = dv_acc[d];
    }
}

extern "C" __global__ void attention_backward_dq(
        const scalar_t* __restrict__ q, const scalar_t* __restrict__ k,
        const scalar_t* __restrict__ v, const scalar_t* __restrict__ dout,
        const scalar_t* __restrict__ lse, const scalar_t* __restrict__ delta,
        scalar_t* __restrict__ dq, int tq, int tk, scalar_t scale, int causal) {
    __shared__ scalar_t sq[BWD_B * (HEAD_DIM + 1)];
    __shared__ scalar_t sdo[BWD_B * (HEAD_DIM + 1)];
    __shared__ scalar_t sk[BWD_B * HEAD_DIM];
    __shared__ scalar_t sv[BWD_B * HEAD_DIM];
    const long long bh = blockIdx.x;
    const int row0 = blockIdx.y * BWD_B;
    const int i = row0 + threadIdx.x;
    const scalar_t* kb = k + bh * tk * HEAD_DIM;
    const scalar_t* vb = v + bh * tk * HEAD_DIM;
    const scalar_t* my_q = sq + threadIdx.x * (HEAD_DIM + 1);
    const scalar_t* my_do = sdo + threadIdx.x * (HEAD_DIM + 1);

    LOAD_TILE(sq, HEAD_DIM + 1, BWD_B, q + bh * tq * HEAD_DIM, row0, tq, (scalar_t)1);
    LOAD_TILE(sdo, HEAD_DIM + 1, BWD_B, dout + bh * tq * HEAD_DIM, row0, tq, (scalar_t)1);
    const scalar_t my_lse = i < tq ? lse[bh * tq + i] : (scalar_t)0;
    const scalar_t my_delta = i < tq ? delta[bh * tq + i] : (scalar_t)0;
    scalar_t dq_acc[HEAD_DIM];
#pragma unroll
    for (int d = 0; d < HEAD_DIM; ++d) dq_acc[d] = 0;

    const int kv_end = causal ? min(tk, row0 + BWD_B) : tk;
    for (int kv0 = 0; kv0 < kv_end; kv0 += BWD_B) {
        __syncthreads();
        LOAD_TILE(sk, HEAD_DIM, BWD_B, kb, kv0, tk, (scalar_t)1);
        LOAD_TILE(sv, HEAD_DIM, BWD_B, vb, kv0, tk, (scalar_t)1);
        __syncthreads();
        if (i >= tq) continue;
#pragma unroll 4
        for (int jj = 0; jj < BWD_B; ++jj) {
            const int j = kv0 + jj;
            if (j >= tk || (causal && j > i)) continue;
            const scalar_t* kj = sk + jj * HEAD_DIM;
            const scalar_t* vj = sv + jj * HEAD_DIM;
            scalar_t s = 0, dp = 0;
#pragma unroll
            for (int d = 0; d < HEAD_DIM; ++d) {
                s += my_q[d] * kj[d];
                dp += my_do[d] * vj[d];
            }
            const scalar_t ds = math_exp(s * scale - my_lse) * (dp - my_delta);
#pragma unroll
            for (int d = 0; d < HEAD_DIM; ++d) dq_acc[d] += ds * kj[d];
        }
    }
    if (i >= tq) return;
    scalar_t* dqi = dq + (bh * tq + i) * HEAD_DIM;
#pragma unroll
    for (int d = 0; d < HEAD_DIM; ++d) dqi[d] = dq_acc[d] * scale;
}
