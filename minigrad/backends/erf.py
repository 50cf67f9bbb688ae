"""erf for NumPy arrays, which NumPy lacks (the 'cpu' and 'strict' devices' `erf`).

Cody's rational Chebyshev approximations (W. J. Cody, "Rational Chebyshev approximations
for the error function", Math. Comp. 1969), as used by CALERF, are accurate to float64
rounding on three ranges of |x|.
"""

from __future__ import annotations

import math

import numpy as np

_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
          2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
          2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
          1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
          3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
          1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)


def erf(x: np.ndarray) -> np.ndarray:
    """erf(x) for a NumPy array, float64 internally, returned in x's dtype."""
    out_dtype = x.dtype if x.dtype.kind == "f" else np.float64
    x64 = np.asarray(x, dtype=np.float64)
    ax = np.abs(x64)
    result = np.empty_like(x64)

    small = ax <= 0.46875
    xs = x64[small]
    z = xs * xs
    num = _ERF_A[4] * z
    den = z
    for i in range(3):
        num = (num + _ERF_A[i]) * z
        den = (den + _ERF_B[i]) * z
    result[small] = xs * (num + _ERF_A[3]) / (den + _ERF_B[3])

    mid = (ax > 0.46875) & (ax <= 4.0)
    y = ax[mid]
    num = _ERF_C[8] * y
    den = y
    for i in range(7):
        num = (num + _ERF_C[i]) * y
        den = (den + _ERF_D[i]) * y
    erfc_mid = (num + _ERF_C[7]) / (den + _ERF_D[7]) * _erfc_scale(y)
    result[mid] = np.copysign(1.0 - erfc_mid, x64[mid])

    large = ax > 4.0
    y = np.minimum(ax[large], 27.0)  # erfc(27) underflows to 0; keeps inf - inf out
    z = 1.0 / (y * y)
    num = _ERF_P[5] * z
    den = z
    for i in range(4):
        num = (num + _ERF_P[i]) * z
        den = (den + _ERF_Q[i]) * z
    r = z * (num + _ERF_P[4]) / (den + _ERF_Q[4])
    erfc_large = (_INV_SQRT_PI - r) / y * _erfc_scale(y)
    result[large] = np.copysign(1.0 - erfc_large, x64[large])

    result[np.isnan(x64)] = np.nan
    return result.astype(out_dtype, copy=False)


def _erfc_scale(y: np.ndarray) -> np.ndarray:
    """exp(-y*y), split as in CALERF so that y*y loses no bits for large y."""
    ysq = np.trunc(y * 16.0) / 16.0
    return np.exp(-ysq * ysq) * np.exp(-(y - ysq) * (y + ysq))
