"""The CUDA kernels (minigrad/cuda/*.cu) against their array-API references, run on the
CPU through the emulator (needs g++; no GPU, no CuPy) and, where there is one, on the GPU
(`pytest -m gpu`); then the fused ops and AdamW driven by the emulated kernels against
their own array-API paths.
"""

import numpy as np
import pytest
from cuda_emulator import COMPILER, EmulatedCudaDevice
from gpu_support import GPU_MARKS, HostBridge

import minigrad
from minigrad import backend
from minigrad.cuda import build_kernels, op_kernels
from minigrad.cuda.reference import reference_kernels

NO_COMPILER = pytest.mark.skipif(COMPILER is None, reason="g++ not found: the CUDA kernels "
                                 "are emulated on the CPU by compiling them with g++")
TOLERANCE = {np.float32: {"rtol": 2e-5, "atol": 2e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13}}


@pytest.fixture(scope="module")
def emulated():
    if COMPILER is None:
        pytest.skip("g++ not found: the CUDA kernels are emulated on the CPU with g++")
    return build_kernels(EmulatedCudaDevice())


@pytest.fixture(scope="module", params=[pytest.param("emulator", marks=NO_COMPILER),
                                        pytest.param("cuda", marks=GPU_MARKS)])
def kernels(request):
    """The raw kernels, called with NumPy arrays: emulated on the CPU, or on the GPU."""
    if request.param == "emulator":
        return request.getfixturevalue("emulated")
    return {name: HostBridge(k) for name, k in backend.get_device("cuda").raw_kernels.items()}


@pytest.fixture(scope="module")
def reference():
    return reference_kernels(backend.get_device("cpu"))


def close(actual, expected, dtype):
    assert actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, **TOLERANCE[dtype])


# -- cross-entropy ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("rows", "classes", "smoothing"),
                         [(5, 3, 0.0), (4, 700, 0.1), (3, 2500, 0.0)])
def test_cross_entropy_matches_reference(kernels, reference, dtype, rows, classes, smoothing):
    rng = np.random.default_rng(rows * classes)
    logits = (rng.standard_normal((rows, classes)) * 4).astype(dtype)
    logits[0, :] += 1e4  # large logits: the row max must be subtracted
    targets = rng.integers(0, classes, rows)
    targets[1] = -100  # ignored row
    losses, lse = kernels["cross_entropy"].forward(logits, targets, -100, smoothing)
    ref_losses, ref_lse = reference["cross_entropy"].forward(logits, targets, -100, smoothing)
    close(lse, ref_lse, dtype)
    close(losses, ref_losses, dtype)
    assert losses[1] == 0
    grad_rows = rng.standard_normal(rows).astype(dtype)
    grad = kernels["cross_entropy"].backward(logits, targets, lse, grad_rows, -100, smoothing)
    close(grad, reference["cross_entropy"].backward(logits, targets, ref_lse, grad_rows, -100,
                                                    smoothing), dtype)
    assert not grad[1].any()


def test_cross_entropy_masked_logits_and_bad_targets(kernels, reference):
    logits = np.array([[-np.inf, 1.0, -np.inf, 2.0], [0.5, 0.0, 0.0, 0.0]], np.float32)
    losses, lse = kernels["cross_entropy"].forward(logits, np.array([3, 7]))
    ref_losses, ref_lse = reference["cross_entropy"].forward(logits, np.array([3, 0]))
    np.testing.assert_allclose(lse, ref_lse, rtol=1e-6)  # -inf logits contribute nothing
    assert np.isfinite(losses[0])
    np.testing.assert_allclose(losses[0], ref_losses[0], rtol=1e-6)
    np.testing.assert_allclose(losses[0], np.logaddexp(1.0, 2.0) - 2.0, rtol=1e-6)
    assert np.isnan(losses[1])  # a target outside [0, C) shows up as NaN


# -- layer norm ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("rows", "dim"), [(3, 1), (130, 40), (2, 700)])
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm_matches_reference(kernels, reference, dtype, rows, dim, affine):
    rng = np.random.default_rng(rows + dim)
    x = (rng.standard_normal((rows, dim)) * 3 + 5).astype(dtype)
    weight = rng.standard_normal(dim).astype(dtype) if affine != "none" else None
    bias = rng.standard_normal(dim).astype(dtype) if affine == "both" else None
    y, mean, rstd = kernels["layer_norm"].forward(x, weight, bias, 1e-5)
    ref = reference["layer_norm"].forward(x, weight, bias, 1e-5)
    for actual, expected in zip((y, mean, rstd), ref):
        close(actual, expected, dtype)
    dy = rng.standard_normal((rows, dim)).astype(dtype)
    grads = kernels["layer_norm"].backward(dy, x, weight, mean, rstd)
    for actual, expected in zip(grads, reference["layer_norm"].backward(dy, x, weight, *ref[1:])):
        close(actual, expected, dtype)
    assert kernels["layer_norm"].backward(dy, x, weight, mean, rstd, False)[1:] == (None, None)


# -- GELU ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_reference(kernels, reference, dtype, approximate):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 97)) * 4).astype(dtype)
    x[0, :4] = [0.0, -12.0, 12.0, 1e-8]
    dy = rng.standard_normal(x.shape).astype(dtype)
    close(kernels["gelu"].forward(x, approximate), reference["gelu"].forward(x, approximate),
          dtype)
    close(kernels["gelu"].backward(x, dy, approximate),
          reference["gelu"].backward(x, dy, approximate), dtype)


def test_gelu_rejects_unknown_approximation(kernels):
    with pytest.raises(ValueError, match="approximate"):
        kernels["gelu"].forward(np.zeros(3, np.float32), "sigmoid")


# -- AdamW -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_adamw_matches_reference_over_steps(kernels, reference, dtype):
    rng = np.random.default_rng(4)
    n = 5000  # several blocks of the kernel
    param = rng.standard_normal(n).astype(dtype)
    state = [param.copy(), np.zeros(n, dtype), np.zeros(n, dtype)]
    ref_state = [param.copy(), np.zeros(n, dtype), np.zeros(n, dtype)]
    for step in range(1, 4):
        grad = rng.standard_normal(n).astype(dtype)
        hyper = (1e-2, 0.9, 0.95, 1e-6, 0.1, step)  # eps 1e-8 is 0 in float16
        kernels["adamw"](state[0], grad, state[1], state[2], *hyper)
        reference["adamw"](ref_state[0], grad, ref_state[1], ref_state[2], *hyper)
    tolerance = TOLERANCE.get(dtype, {"rtol": 1e-3, "atol": 1e-3})
    for actual, expected in zip(state, ref_state):
        np.testing.assert_allclose(actual, expected, **tolerance)
    assert not np.allclose(state[0], param)


def test_adamw_updates_non_contiguous_arrays_in_place(kernels):
    param = np.ones((4, 6), np.float32)[:, ::2]  # a strided view: the array-API path
    exp_avg, exp_avg_sq = np.zeros_like(param), np.zeros_like(param)
    kernels["adamw"](param, np.ones_like(param), exp_avg, exp_avg_sq, 0.1, 0.9, 0.999, 1e-8,
                      0.0, 1)
    np.testing.assert_allclose(param, 0.9, rtol=1e-6)  # first step moves by lr
    np.testing.assert_allclose(exp_avg, 0.1, rtol=1e-6)


# -- Philox -------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 7, 1001])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_philox_streams_match_reference(kernels, reference, n, dtype):
    for kind in ("uniform", "normal"):
        out, offset = getattr(kernels["philox"], kind)((n,), dtype, 1234, 5)
        expected, expected_offset = getattr(reference["philox"], kind)((n,), dtype, 1234, 5)
        assert offset == expected_offset > 5
        if kind == "uniform":
            np.testing.assert_array_equal(out, expected)  # exact: integer arithmetic
        else:
            np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    ints, offset = kernels["philox"].integers(-3, 50000, (n,), "int64", 7, 11)
    expected, _ = reference["philox"].integers(-3, 50000, (n,), "int64", 7, 11)
    np.testing.assert_array_equal(ints, expected)
    assert ints.min() >= -3 and ints.max() < 50000


def test_philox_draws_continue_one_stream_and_look_random(kernels):
    philox = kernels["philox"]
    whole, end = philox.uniform((4096,), "float32", 42, 0)
    first, middle = philox.uniform((2048,), "float32", 42, 0)
    second, end2 = philox.uniform((2048,), "float32", 42, middle)
    np.testing.assert_array_equal(np.concatenate([first, second]), whole)
    assert end == end2 == 1024
    assert whole.min() >= 0 and whole.max() < 1 and abs(whole.mean() - 0.5) < 0.02
    normal, _ = philox.normal((4096,), "float32", 42, 0)
    assert abs(normal.mean()) < 0.05 and abs(normal.std() - 1) < 0.05
    other, _ = philox.uniform((4096,), "float32", 43, 0)
    assert not np.array_equal(other, whole)
    with pytest.raises(ValueError, match="high - low"):
        philox.integers(0, 2 ** 33, (4,), "int64", 0, 0)


# -- attention ---------------------------------------------------------------------------
@pytest.mark.parametrize(("shape", "causal", "dtype"), [
    ((2, 2, 37, 37, 16), True, np.float32),
    ((2, 1, 20, 45, 8), False, np.float32),
    ((1, 1, 45, 20, 8), True, np.float32),  # more queries than keys
    ((1, 1, 70, 70, 64), True, np.float32),  # several tiles each way
    ((1, 2, 19, 19, 16), True, np.float64),
])
def test_attention_matches_reference(kernels, reference, shape, causal, dtype):
    b, h, tq, tk, d = shape
    rng = np.random.default_rng(tq * d)
    q = rng.standard_normal((b, h, tq, d)).astype(dtype)
    k = rng.standard_normal((b, h, tk, d)).astype(dtype)
    v = rng.standard_normal((b, h, tk, d)).astype(dtype)
    assert kernels["attention"].supports(q, k, v)
    out, lse = kernels["attention"].forward(q, k, v, causal, 0.3)
    ref_out, ref_lse = reference["attention"].forward(q, k, v, causal, 0.3)
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else TOLERANCE[dtype]
    np.testing.assert_allclose(out, ref_out, **tolerance)
    np.testing.assert_allclose(lse, ref_lse, **tolerance)
    dout = rng.standard_normal(out.shape).astype(dtype)
    grads = kernels["attention"].backward(q, k, v, out, lse, dout, causal, 0.3)
    for actual, expected in zip(grads, reference["attention"].backward(q, k, v, ref_out, ref_lse,
                                                                        dout, causal, 0.3)):
        np.testing.assert_allclose(actual, expected, **tolerance)


def test_attention_declines_head_sizes_past_the_tiles(kernels):
    q = np.zeros((1, 1, 4, 2048), np.float32)
    assert not kernels["attention"].supports(q, q, q)
    assert not kernels["attention"].supports(q, q[..., :8], q[..., :8])


# -- the fused ops and the optimizer on the emulated kernels -----------------------------
@pytest.fixture
def kernels_on_cpu(monkeypatch, emulated):
    """The emulated CUDA kernels installed as the 'cpu' device's fused-op kernels."""
    cpu = backend.get_device("cpu")
    monkeypatch.setattr(cpu, "kernels", op_kernels(emulated))
    return cpu


def run_both(cpu, monkeypatch, fn, *arrays):
    """fn's outputs and input gradients with the emulated kernels, then without."""
    results = []
    for kernels in (dict(cpu.kernels), {}):
        monkeypatch.setattr(cpu, "kernels", kernels)
        tensors = [minigrad.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        out = fn(*tensors)
        out.backward(minigrad.tensor(np.linspace(-1, 1, out.size).reshape(out.shape)
                                     .astype(out.dtype)))
        results.append([out.numpy()] + [t.grad.numpy() for t in tensors if t.requires_grad])
    return results


@pytest.mark.parametrize(("reduction", "smoothing"), [("mean", 0.1), ("sum", 0.0),
                                                      ("none", 0.0)])
def test_fused_cross_entropy_uses_the_kernel(kernels_on_cpu, monkeypatch, reduction, smoothing):
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((2, 3, 11)).astype(np.float32)
    targets = rng.integers(0, 11, (2, 3))
    targets[0, 1] = -100
    loss = lambda x, t: minigrad.nn.functional.cross_entropy(
        x, t, reduction=reduction, label_smoothing=smoothing)
    with_kernel, without = run_both(kernels_on_cpu, monkeypatch, loss, logits, targets)
    for a, b in zip(with_kernel, without):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_fused_layer_norm_attention_and_gelu_use_the_kernels(kernels_on_cpu, monkeypatch):
    import minigrad.nn.functional as F

    rng = np.random.default_rng(6)
    cases = [
        (lambda x, w, b: F.layer_norm(x, (12,), w, b),
         [rng.standard_normal((2, 3, 12)), rng.standard_normal(12), rng.standard_normal(12)]),
        (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, causal=True),
         [rng.standard_normal((2, 2, 9, 8)) for _ in range(3)]),
        (lambda x: F.gelu(x, approximate="tanh"), [rng.standard_normal((4, 5))]),
    ]
    for fn, arrays in cases:
        arrays = [a.astype(np.float32) for a in arrays]
        with_kernel, without = run_both(kernels_on_cpu, monkeypatch, fn, *arrays)
        for a, b in zip(with_kernel, without):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_fused_ops_call_the_kernels(kernels_on_cpu):
    import minigrad.nn.functional as F

    calls = []
    for name, entry in kernels_on_cpu.kernels.items():
        if name != "adamw":
            kernels_on_cpu.kernels[name] = _Recording(entry, name, calls)
    x = minigrad.randn(2, 4, 8, requires_grad=True)
    h = F.gelu(F.layer_norm(x, (8,)))
    a = F.scaled_dot_product_attention(h.reshape(2, 1, 4, 8), h.reshape(2, 1, 4, 8),
                                       h.reshape(2, 1, 4, 8), causal=True)
    F.cross_entropy(a.reshape(8, 8), minigrad.tensor(np.arange(8))).backward()
    assert sorted(calls) == sorted(
        f"{name}.{phase}" for name in ("layer_norm", "gelu", "scaled_dot_product_attention",
                                       "cross_entropy") for phase in ("forward", "backward"))
    assert x.grad is not None and np.isfinite(x.grad.numpy()).all()


def test_attention_with_a_mask_keeps_the_array_path(kernels_on_cpu):
    import minigrad.nn.functional as F

    q = minigrad.randn(1, 1, 5, 4, requires_grad=True)
    mask = minigrad.tensor(np.tril(np.ones((5, 5), bool)))
    out = F.scaled_dot_product_attention(q, q, q, mask=mask)
    out.sum().backward()
    assert out._ctx.kernel is None  # declined: the backward ran the array-API code too
    expected = F.scaled_dot_product_attention_composite(q.detach(), q.detach(), q.detach(),
                                                        mask=mask)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_adamw_optimizer_steps_through_the_kernel(kernels_on_cpu, monkeypatch):
    from minigrad import nn, optim

    def train(kernels):
        monkeypatch.setattr(kernels_on_cpu, "kernels", kernels)
        minigrad.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 5), nn.GELU(), nn.Linear(5, 3))
        opt = optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
        x = minigrad.tensor(np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6))
        for _ in range(3):
            opt.zero_grad()
            (model(x) ** 2).mean().backward()
            opt.step()
        return [p.numpy() for p in model.parameters()]

    calls = []
    recorded = dict(kernels_on_cpu.kernels)
    recorded["adamw"] = _Recording(recorded["adamw"], "adamw", calls)
    with_kernel = train(recorded)
    without = train({})
    assert calls.count("adamw.__call__") == 3  # one launch per step: one flat buffer
    for a, b in zip(with_kernel, without):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


class _Recording:
    """Wraps a kernel entry and notes every call as 'name.method'."""

    def __init__(self, entry, name, calls):
        self.entry, self.name, self.calls = entry, name, calls

    def __call__(self, *args, **kwargs):
        self.calls.append(f"{self.name}.__call__")
        return self.entry(*args, **kwargs)

    def forward(self, fn, *arrays):
        self.calls.append(f"{self.name}.forward")
        return self.entry.forward(fn, *arrays)

    def backward(self, fn, *grads):
        self.calls.append(f"{self.name}.backward")
        return self.entry.backward(fn, *grads)


# -- the emulator itself ------------------------------------------------------------------
@NO_COMPILER
def test_emulator_checks_argument_types_and_catches_divergent_barriers():
    from cuda_emulator import EmulatedModule

    source = '''
extern "C" __global__ void diverge(float* out, int n) {
    if (threadIdx.x < 16) __syncthreads();
    out[threadIdx.x] = (float)n;
}'''
    kernel = EmulatedModule(source, ()).get_function("diverge")
    out = np.zeros(32, np.float32)
    with pytest.raises(TypeError, match="n must be a NumPy int32"):
        kernel((1,), (32,), (out, 3))  # a Python int, which CuPy would pass as 64 bits
    with pytest.raises(TypeError, match="out must be an array of float32"):
        kernel((1,), (32,), (out.astype(np.float64), np.int32(3)))
    with pytest.raises(RuntimeError, match="barrier not reached by every thread"):
        kernel((1,), (32,), (out, np.int32(3)))
