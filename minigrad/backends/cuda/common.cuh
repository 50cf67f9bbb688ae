// Helpers shared by minigrad's kernels. The loader (minigrad/cuda/loader.py) pastes this
// file in place of its #include line, so every kernel compiles from one self-contained
// string under NVRTC (no host headers) and `nvcc --ptx file.cu` still works on its own.
//
// SCALAR_T is the element type of a compiled variant (float or double; the loader passes
// -DSCALAR_T=...). Reductions accumulate in scalar_t.
#ifndef SCALAR_T
#define SCALAR_T float
#endif
typedef SCALAR_T scalar_t;

#define WARP_SIZE 32
#define FULL_MASK 0xffffffffu

// Overloads so one kernel body serves float and double.
__device__ __forceinline__ float math_exp(float x) { return expf(x); }
__device__ __forceinline__ double math_exp(double x) { return exp(x); }
__device__ __forceinline__ float math_log(float x) { return logf(x); }
__device__ __forceinline__ double math_log(double x) { return log(x); }
__device__ __forceinline__ float math_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double math_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float math_erf(float x) { return erff(x); }
__device__ __forceinline__ double math_erf(double x) { return erf(x); }
__device__ __forceinline__ float math_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double math_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float math_max(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double math_max(double a, double b) { return fmax(a, b); }

// -infinity of scalar_t (no <cmath> INFINITY under NVRTC).
__device__ __forceinline__ scalar_t neg_inf() { return (scalar_t)(-__int_as_float(0x7f800000)); }

__device__ __forceinline__ scalar_t warp_sum(scalar_t v) {
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}

__device__ __forceinline__ scalar_t warp_max(scalar_t v) {
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1)
        v = math_max(v, __shfl_xor_sync(FULL_MASK, v, offset));
    return v;
}

// Sum / max over the whole block; every thread gets the result. blockDim.x must be a
// multiple of 32 (at most 1024); `scratch` is __shared__ scalar_t[32], and may be reused
// by the next call (the leading barrier waits until every warp has read it).
__device__ scalar_t block_sum(scalar_t v, scalar_t* scratch) {
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x / WARP_SIZE) ? scratch[lane] : (scalar_t)0;
    return warp_sum(v);
}

__device__ scalar_t block_max(scalar_t v, scalar_t* scratch) {
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x / WARP_SIZE) ? scratch[lane] : neg_inf();
    return warp_max(v);
}
