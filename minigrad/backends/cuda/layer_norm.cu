// Layer norm over the last axis of x (N, D): forward and backward, one block per row;
// a third kernel reduces the weight and bias gradients over rows.
//
// Forward: mean = sum x / D, var = sum (x - mean)^2 / D (two passes over the row, which
// stays in L1/L2), rstd = 1 / sqrt(var + eps), y = (x - mean) * rstd * w + b.
// mean and rstd (N,) are saved for the backward instead of the normalised x.
//
// Backward, with xhat = (x - mean) * rstd and u = w * dy:
//   dx = rstd * (u - mean(u) - xhat * mean(u * xhat))
//   dw = sum_rows dy * xhat,  db = sum_rows dy
// dw and db are column sums; layer_norm_backward_params sums a chunk of rows per block
// into partial (n_chunks, D) buffers, and the caller adds the chunks up.
#include "common.cuh"

extern "C" __global__ void layer_norm_forward(
        const scalar_t* __restrict__ x, const scalar_t* __restrict__ weight,
        const scalar_t* __restrict__ bias, scalar_t* __restrict__ y,
        scalar_t* __restrict__ mean_out, scalar_t* __restrict__ rstd_out,
        int dim, scalar_t eps, int has_weight, int has_bias) {
    __shared__ scalar_t scratch[32];
    const long long row = blockIdx.x;
    const scalar_t* xr = x + row * dim;
    scalar_t* yr = y + row * dim;

    scalar_t s = 0;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) s += xr[c];
    const scalar_t mean = block_sum(s, scratch) / (scalar_t)dim;
    scalar_t sq = 0;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        const scalar_t d = xr[c] - mean;
        sq += d * d;
    }
    const scalar_t var = block_sum(sq, scratch) / (scalar_t)dim;
    const scalar_t rstd = (scalar_t)1 / math_sqrt(var + eps);
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        scalar_t v = (xr[c] - mean) * rstd;
        if (has_weight) v *= weight[c];
        if (has_bias) v += bias[c];
        yr[c] = v;
    }
    if (threadIdx.x == 0) {
        mean_out[row] = mean;
        rstd_out[row] = rstd;
    }
}

extern "C" __global__ void layer_norm_backward_input(
        const scalar_t* __restrict__ dy, const scalar_t* __restrict__ x,
        const scalar_t* __restrict__ weight, const scalar_t* __restrict__ mean,
        const scalar_t* __restrict__ rstd, scalar_t* __restrict__ dx,
        int dim, int has_weight) {
    __shared__ scalar_t scratch[32];
    const long long row = blockIdx.x;
    const scalar_t* xr = x + row * dim;
    const scalar_t* dyr = dy + row * dim;
    scalar_t* dxr = dx + row * dim;
    const scalar_t mu = mean[row], rs = rstd[row];

    scalar_t sum_u = 0, sum_u_xhat = 0;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        const scalar_t u = has_weight ? dyr[c] * weight[c] : dyr[c];
        sum_u += u;
        sum_u_xhat += u * (xr[c] - mu) * rs;
    }
    const scalar_t mean_u = block_sum(sum_u, scratch) / (scalar_t)dim;
    const scalar_t mean_u_xhat = block_sum(sum_u_xhat, scratch) / (scalar_t)dim;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        const scalar_t u = has_weight ? dyr[c] * weight[c] : dyr[c];
        const scalar_t xhat = (xr[c] - mu) * rs;
        dxr[c] = rs * (u - mean_u - xhat * mean_u_xhat);
    }
}

// grid (ceil(D / blockDim.x), n_chunks): thread = one column of one chunk of rows, so
// neighbouring threads read neighbouring addresses of each row.
extern "C" __global__ void layer_norm_backward_params(
        const scalar_t* __restrict__ dy, const scalar_t* __restrict__ x,
        const scalar_t* __restrict__ mean, const scalar_t* __restrict__ rstd,
        scalar_t* __restrict__ partial_dw, scalar_t* __restrict__ partial_db,
        long long n_rows, int dim, int rows_per_chunk) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    const long long first = (long long)blockIdx.y * rows_per_chunk;
    long long last = first + rows_per_chunk;
    if (last > n_rows) last = n_rows;
    scalar_t dw = 0, db = 0;
    for (long long r = first; r < last; ++r) {
        const scalar_t g = dy[r * dim + c];
        dw += g * (x[r * dim + c] - mean[r]) * rstd[r];
        db += g;
    }
    partial_dw[(long long)blockIdx.y * dim + c] = dw;
    partial_db[(long long)blockIdx.y * dim + c] = db;
}
