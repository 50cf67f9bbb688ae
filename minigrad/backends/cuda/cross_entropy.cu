// Softmax + cross-entropy over the last axis of logits (N, C), one block per row.
//
// Forward reads each row once: an online softmax keeps a running max m and a running
// sum s = sum exp(x - m) per thread (rescaled when m grows), then the block combines
// them into lse = log sum_c exp(x_c). With label smoothing eps:
//   loss = lse - (1 - eps) x_t - eps / C * sum_c x_c
// Only lse (N,) is kept for the backward; the probabilities are never stored. The
// backward recomputes them from the logits and writes the gradient in the same pass:
//   dloss/dx_c = softmax_c - (1 - eps) [c == t] - eps / C
// Rows whose target equals ignore_index get loss 0 and gradient 0. A target outside
// [0, C) gives a NaN loss (a kernel cannot raise; the NaN makes the error visible).
#include "common.cuh"

extern "C" __global__ void cross_entropy_forward(
        const scalar_t* __restrict__ logits, const long long* __restrict__ targets,
        scalar_t* __restrict__ losses, scalar_t* __restrict__ lse_out,
        int n_classes, long long ignore_index, scalar_t label_smoothing) {
    __shared__ scalar_t scratch[32];
    const long long row = blockIdx.x;
    const scalar_t* x = logits + row * n_classes;

    scalar_t m = neg_inf(), s = 0, total = 0;
    for (int c = threadIdx.x; c < n_classes; c += blockDim.x) {
        const scalar_t v = x[c];
        total += v;
        if (v > m) {
            s = s * math_exp(m - v) + (scalar_t)1;  // exp(-inf) = 0 on the first element
            m = v;
        } else if (m != neg_inf()) {  // skips -inf logits while m is still -inf
            s += math_exp(v - m);
        }
    }
    const scalar_t row_max = block_max(m, scratch);
    // A thread that saw no element has m = -inf and s = 0: it adds 0.
    const scalar_t mine = s > (scalar_t)0 ? s * math_exp(m - row_max) : (scalar_t)0;
    const scalar_t sum = block_sum(mine, scratch);
    total = block_sum(total, scratch);
    if (threadIdx.x != 0) return;

    const scalar_t lse = row_max + math_log(sum);
    lse_out[row] = lse;
    const long long t = targets[row];
    if (t == ignore_index) {
        losses[row] = 0;
    } else if (t < 0 || t >= n_classes) {
        losses[row] = (scalar_t)__int_as_float(0x7fc00000);  // NaN
    } else {
        scalar_t loss = lse - ((scalar_t)1 - label_smoothing) * x[t];
        if (label_smoothing != (scalar_t)0)  // else a -inf logit would make 0 * -inf = NaN
            loss -= label_smoothing / (scalar_t)n_classes * total;
        losses[row] = loss;
    }
}

extern "C" __global__ void cross_entropy_backward(
        const scalar_t* __restrict__ logits, const long long* __restrict__ targets,
        const scalar_t* __restrict__ lse, const scalar_t* __restrict__ grad_losses,
        scalar_t* __restrict__ grad_logits,
        int n_classes, long long ignore_index, scalar_t label_smoothing) {
    const long long row = blockIdx.x;
    const scalar_t* x = logits + row * n_classes;
    scalar_t* dx = grad_logits + row * n_classes;
    const long long t = targets[row];
    const scalar_t g = t == ignore_index ? (scalar_t)0 : grad_losses[row];
    const scalar_t row_lse = lse[row];
    const scalar_t smooth = label_smoothing / (scalar_t)n_classes;
    const scalar_t on_target = (scalar_t)1 - label_smoothing;
    for (int c = threadIdx.x; c < n_classes; c += blockDim.x) {
        const scalar_t p = math_exp(x[c] - row_lse);
        dx[c] = g * (p - smooth - (c == t ? on_target : (scalar_t)0));
    }
}
