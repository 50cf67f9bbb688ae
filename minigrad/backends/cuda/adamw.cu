// AdamW over one flat buffer: the optimizer keeps every parameter of a group (one device,
// one dtype) as a view into a single buffer, and its moments likewise, so a step is one
// launch however many parameters the model has. Elementwise, grid-stride loop.
// PyTorch's update (decoupled weight decay), step t:
//   p <- p (1 - lr wd)
//   m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2
//   p <- p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// step_size = lr / (1 - b1^t) and bc2_sqrt = sqrt(1 - b2^t) come from the host.
#include "common.cuh"

extern "C" __global__ void adamw_update(
        scalar_t* __restrict__ p, const scalar_t* __restrict__ g, scalar_t* __restrict__ m,
        scalar_t* __restrict__ v, long long n, scalar_t lr, scalar_t beta1, scalar_t beta2,
        scalar_t eps, scalar_t weight_decay, scalar_t step_size, scalar_t bc2_sqrt) {
    const scalar_t decay = (scalar_t)1 - lr * weight_decay;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const scalar_t gi = g[i];
        const scalar_t mi = beta1 * m[i] + ((scalar_t)1 - beta1) * gi;
        const scalar_t vi = beta2 * v[i] + ((scalar_t)1 - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - step_size * mi / (math_sqrt(vi) / bc2_sqrt + eps);
    }
}
