// GELU forward and backward, elementwise over a contiguous buffer (grid-stride loops).
//   exact:  y = x Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2
//           dy/dx = Phi(x) + x phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
//   tanh:   y = x (1 + t) / 2,  t = tanh(sqrt(2/pi) (x + 0.044715 x^3))
//           dy/dx = (1 + t) / 2 + x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2) / 2
// The backward recomputes Phi / t from x instead of saving them (one array saved, not two).
#include "common.cuh"

// INV_SQRT_2, INV_SQRT_2PI, SQRT_2_OVER_PI, GELU_CUBIC: -D defines from gelu.py, which
// takes them from minigrad/nn/functional/gelu.py (their one copy).

__device__ __forceinline__ scalar_t gelu_value(scalar_t x, int tanh_approx) {
    if (tanh_approx) {
        const scalar_t t = math_tanh((scalar_t)SQRT_2_OVER_PI * (x + (scalar_t)GELU_CUBIC * x * x * x));
        return (scalar_t)0.5 * x * ((scalar_t)1 + t);
    }
    return (scalar_t)0.5 * x * ((scalar_t)1 + math_erf(x * (scalar_t)INV_SQRT_2));
}

__device__ __forceinline__ scalar_t gelu_derivative(scalar_t x, int tanh_approx) {
    if (tanh_approx) {
        const scalar_t t = math_tanh((scalar_t)SQRT_2_OVER_PI * (x + (scalar_t)GELU_CUBIC * x * x * x));
        const scalar_t du = (scalar_t)SQRT_2_OVER_PI * ((scalar_t)1 + (scalar_t)(3 * GELU_CUBIC) * x * x);
        return (scalar_t)0.5 * ((scalar_t)1 + t) + (scalar_t)0.5 * x * ((scalar_t)1 - t * t) * du;
    }
    const scalar_t cdf = (scalar_t)0.5 * ((scalar_t)1 + math_erf(x * (scalar_t)INV_SQRT_2));
    return cdf + x * (scalar_t)INV_SQRT_2PI * math_exp((scalar_t)-0.5 * x * x);
}

extern "C" __global__ void gelu_forward(
        const scalar_t* __restrict__ x, scalar_t* __restrict__ y, long long n, int tanh_approx) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = gelu_value(x[i], tanh_approx);
}

extern "C" __global__ void gelu_backward(
        const scalar_t* __restrict__ x, const scalar_t* __restrict__ dy,
        scalar_t* __restrict__ dx, long long n, int tanh_approx) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        dx[i] = dy[i] * gelu_derivative(x[i], tanh_approx);
}
