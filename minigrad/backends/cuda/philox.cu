// Counter-based random numbers on the device: Philox4x32-10 (Salmon et al., "Parallel
// random numbers: as easy as 1, 2, 3", SC 2011). Thread g hashes the 128-bit counter
// (offset + g, 0) under the 64-bit key `seed` into four 32-bit words. A generator's whole
// state is (seed, offset): the host advances offset by the counters a draw used, so the
// state is two integers that a checkpoint can save, and draws never depend on the launch
// configuration.
//
// Output per counter: float32 draws use one word per value (4 values); float64 draws two
// words per value (2 values); integers one word per value (ranges up to 2^32).
//   uniform float32: (w >> 8) 2^-24 in [0, 1)
//   uniform float64: ((w0 >> 5) 2^26 + (w1 >> 6)) 2^-53 in [0, 1)
//   normal: Box-Muller on pairs, u1 in (0, 1] so log(u1) is finite:
//           r = sqrt(-2 log u1), z0 = r cos(2 pi u2), z1 = r sin(2 pi u2)
//   integers in [low, low + range): low + (w * range) >> 32 (bias below range / 2^32)

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
#define TWO_PI 6.28318530717958647693

struct philox_words { unsigned int w[4]; };

__device__ philox_words philox4x32_10(unsigned long long counter, unsigned long long seed) {
    unsigned int c0 = (unsigned int)counter, c1 = (unsigned int)(counter >> 32), c2 = 0, c3 = 0;
    unsigned int k0 = (unsigned int)seed, k1 = (unsigned int)(seed >> 32);
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        const unsigned int hi0 = __umulhi(PHILOX_M0, c0), lo0 = PHILOX_M0 * c0;
        const unsigned int hi1 = __umulhi(PHILOX_M1, c2), lo1 = PHILOX_M1 * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    philox_words out;
    out.w[0] = c0; out.w[1] = c1; out.w[2] = c2; out.w[3] = c3;
    return out;
}

__device__ __forceinline__ float unit_float(unsigned int w) {  // [0, 1)
    return (float)(w >> 8) * 5.9604644775390625e-08f;
}

__device__ __forceinline__ double unit_double(unsigned int w0, unsigned int w1) {  // [0, 1)
    return ((double)(w0 >> 5) * 67108864.0 + (double)(w1 >> 6)) * 1.1102230246251565e-16;
}

extern "C" __global__ void philox_uniform_float(
        float* __restrict__ out, long long n, unsigned long long seed, unsigned long long offset) {
    const long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (4 * g >= n) return;
    const philox_words r = philox4x32_10(offset + (unsigned long long)g, seed);
    for (int e = 0; e < 4 && 4 * g + e < n; ++e) out[4 * g + e] = unit_float(r.w[e]);
}

extern "C" __global__ void philox_uniform_double(
        double* __restrict__ out, long long n, unsigned long long seed, unsigned long long offset) {
    const long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (2 * g >= n) return;
    const philox_words r = philox4x32_10(offset + (unsigned long long)g, seed);
    for (int e = 0; e < 2 && 2 * g + e < n; ++e)
        out[2 * g + e] = unit_double(r.w[2 * e], r.w[2 * e + 1]);
}

extern "C" __global__ void philox_normal_float(
        float* __restrict__ out, long long n, unsigned long long seed, unsigned long long offset) {
    const long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (4 * g >= n) return;
    const philox_words r = philox4x32_10(offset + (unsigned long long)g, seed);
    for (int pair = 0; pair < 2; ++pair) {
        const float u1 = 1.0f - unit_float(r.w[2 * pair]);  // (0, 1]
        const float u2 = unit_float(r.w[2 * pair + 1]);
        const float radius = sqrtf(-2.0f * logf(u1));
        const float angle = (float)TWO_PI * u2;
        const long long at = 4 * g + 2 * pair;
        if (at < n) out[at] = radius * cosf(angle);
        if (at + 1 < n) out[at + 1] = radius * sinf(angle);
    }
}

extern "C" __global__ void philox_normal_double(
        double* __restrict__ out, long long n, unsigned long long seed, unsigned long long offset) {
    const long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (2 * g >= n) return;
    const philox_words r = philox4x32_10(offset + (unsigned long long)g, seed);
    const double u1 = 1.0 - unit_double(r.w[0], r.w[1]);
    const double u2 = unit_double(r.w[2], r.w[3]);
    const double radius = sqrt(-2.0 * log(u1));
    out[2 * g] = radius * cos(TWO_PI * u2);
    if (2 * g + 1 < n) out[2 * g + 1] = radius * sin(TWO_PI * u2);
}

extern "C" __global__ void philox_integers(
        long long* __restrict__ out, long long n, unsigned long long seed,
        unsigned long long offset, long long low, unsigned long long range) {
    const long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (4 * g >= n) return;
    const philox_words r = philox4x32_10(offset + (unsigned long long)g, seed);
    for (int e = 0; e < 4 && 4 * g + e < n; ++e)
        out[4 * g + e] = low + (long long)(((unsigned long long)r.w[e] * range) >> 32);
}
