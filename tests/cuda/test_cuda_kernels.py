"""The CUDA kernels (minigrad/backends/cuda/*.cu) against their ops' own array-API code.

Each fused op runs twice on the same inputs: through its kernel (`Device.fused_ops`),
and through its array-API path on 'cpu' (the fused-op table emptied); values and input
gradients must agree. The kernels run on the CPU through the emulator (needs g++; no
GPU, no CuPy) and, where there is one, on the GPU (`pytest -m gpu`). The AdamW kernel is
held to the array-API formula of `Device.adamw_update`, Philox to Random123's
known-answer vector.
"""

import types

import numpy as np
import pytest
from cuda_emulator import COMPILER, EmulatedHost
from gpu_support import GPU_MARKS, HostBridge

import minigrad
import minigrad.nn.functional as F
from minigrad import backends, nn, optim
from minigrad.backends import Device
from minigrad.backends.cuda import AdamWKernel, KernelLibrary, PhiloxKernel, fused_ops

NO_COMPILER = pytest.mark.skipif(COMPILER is None, reason="g++ not found: the CUDA kernels "
                                 "are emulated on the CPU by compiling them with g++")
TOLERANCE = {"float32": {"rtol": 1e-4, "atol": 1e-5}, "float64": {"rtol": 1e-11, "atol": 1e-12}}
CPU = backends.get_device("cpu")


@pytest.fixture(scope="module")
def emulated_library():
    if COMPILER is None:
        pytest.skip("g++ not found: the CUDA kernels are emulated on the CPU with g++")
    return KernelLibrary(EmulatedHost())


@pytest.fixture(params=[pytest.param("emulator", marks=NO_COMPILER),
                        pytest.param("cuda", marks=GPU_MARKS)])
def kernel_device(request, monkeypatch):
    """A device whose fused ops are the CUDA kernels: 'cpu' with the emulated kernels
    installed, or the GPU."""
    if request.param == "cuda":
        return backends.get_device("cuda")
    library = request.getfixturevalue("emulated_library")
    monkeypatch.setattr(CPU, "fused_ops", fused_ops(library))
    return CPU


@pytest.fixture(params=[pytest.param("emulator", marks=NO_COMPILER),
                        pytest.param("cuda", marks=GPU_MARKS)])
def raw_kernel(request):
    """A kernel wrapper class -> an instance called with NumPy arrays (emulated, or on
    the GPU through HostBridge)."""
    if request.param == "cuda":
        library = KernelLibrary(backends.get_device("cuda"))
        return lambda cls: HostBridge(cls(library))
    library = request.getfixturevalue("emulated_library")
    return lambda cls: cls(library)


def run(device, fn, arrays, grad_seed=0):
    """Outputs and input gradients (NumPy) of fn on `device`; float inputs get gradients."""
    tensors = [minigrad.tensor(a, device=device, requires_grad=a.dtype.kind == "f")
               for a in arrays]
    out = fn(*tensors)
    upstream = np.random.default_rng(grad_seed).standard_normal(out.shape).astype(out.dtype)
    out.backward(minigrad.tensor(upstream, device=device))
    return [out] + [t.grad for t in tensors if t.requires_grad]


def array_path(fn, arrays):
    """`run` on 'cpu' with no fused-op kernels: the ops' own array-API code."""
    saved, CPU.fused_ops = CPU.fused_ops, {}
    try:
        return [t.numpy() for t in run(CPU, fn, arrays)]
    finally:
        CPU.fused_ops = saved


def check_against_array_path(device, fn, arrays, dtype, **tolerance):
    """fn through the kernels equals fn through the array-API code; returns the results."""
    results = run(device, fn, arrays)
    assert results[0]._ctx.kernel is device.fused_ops[results[0]._ctx.name]
    with_kernel = [t.numpy() for t in results]
    for actual, expected in zip(with_kernel, array_path(fn, arrays), strict=True):
        assert actual.dtype == expected.dtype and actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, **{**TOLERANCE[dtype], **tolerance})
    return with_kernel


# -- cross-entropy ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("rows", "classes", "smoothing", "reduction"),
                         [(5, 3, 0.0, "none"), (4, 700, 0.1, "mean"), (3, 2500, 0.0, "sum")])
def test_cross_entropy_matches_the_array_path(kernel_device, dtype, rows, classes, smoothing,
                                              reduction):
    rng = np.random.default_rng(rows * classes)
    logits = (rng.standard_normal((rows, classes)) * 4).astype(dtype)
    logits[0, :] += 1e4  # large logits: the row max must be subtracted
    targets = rng.integers(0, classes, rows)
    targets[1] = -100  # ignored row
    loss = lambda x, t: F.cross_entropy(x, t, reduction=reduction, label_smoothing=smoothing)
    # float32 holds logits near 1e4 to about 1e-3: the two paths round x - max differently
    atol = 1e-4 if dtype == "float32" else 1e-12
    out, grad = check_against_array_path(kernel_device, loss, [logits, targets], dtype,
                                         atol=atol)
    assert not grad[1].any()
    if reduction == "none":
        assert out[1] == 0


def test_cross_entropy_masked_logits_and_bad_targets(kernel_device):
    logits = np.array([[-np.inf, 1.0, -np.inf, 2.0], [0.5, 0.0, 0.0, 0.0]], np.float32)
    loss = lambda x, t: F.cross_entropy(x, t, reduction="none")
    out = check_against_array_path(kernel_device, loss, [logits, np.array([3, 0])],
                                   "float32")[0]
    np.testing.assert_allclose(out[0], np.logaddexp(1.0, 2.0) - 2.0, rtol=1e-6)
    bad = F.cross_entropy(minigrad.tensor(logits, device=kernel_device),
                          minigrad.tensor(np.array([3, 7]), device=kernel_device),
                          reduction="none").numpy()
    assert np.isfinite(bad[0]) and np.isnan(bad[1])  # a target outside [0, C): NaN


# -- layer norm ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("rows", "dim"), [(3, 1), (130, 40), (2, 700)])
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm_matches_the_array_path(kernel_device, dtype, rows, dim, affine):
    rng = np.random.default_rng(rows + dim)
    arrays = [(rng.standard_normal((rows, dim)) * 3 + 5).astype(dtype)]
    arrays += [rng.standard_normal(dim).astype(dtype) for _ in range(("none", "weight",
                                                                       "both").index(affine))]
    check_against_array_path(kernel_device, lambda x, *p: F.layer_norm(x, (dim,), *p),
                             arrays, dtype)


def test_layer_norm_input_gradient_alone(kernel_device):
    """A weight that needs no gradient: the parameter-gradient kernel is skipped."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((4, 6)).astype(np.float32), rng.standard_normal(6)
    weight = minigrad.tensor(w.astype(np.float32), device=kernel_device)
    norm = lambda t: F.layer_norm(t, (6,), weight)
    check_against_array_path(kernel_device, norm, [x], "float32")
    assert weight.grad is None


# -- GELU ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_the_array_path(kernel_device, dtype, approximate):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 97)) * 4).astype(dtype)
    x[0, :4] = [0.0, -12.0, 12.0, 1e-8]
    check_against_array_path(kernel_device, lambda t: F.gelu(t, approximate=approximate),
                             [x], dtype)


# -- attention ---------------------------------------------------------------------------
@pytest.mark.parametrize(("shape", "causal", "dtype"), [
    ((2, 2, 37, 37, 16), True, "float32"),
    ((2, 1, 20, 45, 8), False, "float32"),
    ((1, 1, 45, 20, 8), True, "float32"),  # more queries than keys
    ((1, 1, 70, 70, 64), True, "float32"),  # several tiles each way
    ((1, 2, 19, 19, 16), True, "float64"),
])
def test_attention_matches_the_array_path(kernel_device, shape, causal, dtype):
    b, h, tq, tk, d = shape
    rng = np.random.default_rng(tq * d)
    arrays = [rng.standard_normal((b, h, t, d)).astype(dtype) for t in (tq, tk, tk)]
    check_against_array_path(
        kernel_device, lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal,
                                                                      scale=0.3),
        arrays, dtype)


def test_attention_declines_masks_dropout_and_head_sizes_past_the_tiles(kernel_device):
    kernel = kernel_device.fused_ops["scaled_dot_product_attention"]
    plain, dropout = (types.SimpleNamespace(dropout_p=p) for p in (0.0, 0.1))
    q = np.zeros((1, 1, 4, 8), np.float32)
    assert kernel.supports(plain, q, q, q)
    assert not kernel.supports(plain, q, q, q, np.ones((4, 4), bool))
    assert not kernel.supports(dropout, q, q, q)
    big = np.zeros((1, 1, 4, 2048), np.float32)
    assert not kernel.supports(plain, big, big, big)
    assert not kernel.supports(plain, q, q, q[..., :4])  # Dv != D

    x = minigrad.randn(1, 1, 5, 4, device=kernel_device, requires_grad=True)
    mask = minigrad.tensor(np.tril(np.ones((5, 5), bool)), device=kernel_device)
    out = F.scaled_dot_product_attention(x, x, x, attn_mask=mask)
    out.sum().backward()
    assert out._ctx.kernel is None  # declined: the backward ran the array-API code too
    causal = F.scaled_dot_product_attention(x, x, x, is_causal=True)
    np.testing.assert_allclose(out.numpy(), causal.numpy(), rtol=1e-5, atol=1e-6)


def test_a_model_calls_every_fused_kernel(kernel_device, monkeypatch):
    calls = []
    for name, kernel in kernel_device.fused_ops.items():
        monkeypatch.setitem(kernel_device.fused_ops, name, _Recording(kernel, name, calls))
    x = minigrad.randn(2, 4, 8, device=kernel_device, requires_grad=True)
    h = F.gelu(F.layer_norm(x, (8,))).reshape(2, 1, 4, 8)
    a = F.scaled_dot_product_attention(h, h, h, is_causal=True)
    F.cross_entropy(a.reshape(8, 8), minigrad.tensor(np.arange(8), device=kernel_device)
                    ).backward()
    assert sorted(calls) == sorted(
        f"{name}.{phase}" for name in ("layer_norm", "gelu", "scaled_dot_product_attention",
                                       "cross_entropy") for phase in ("forward", "backward"))
    assert np.isfinite(x.grad.numpy()).all()


class _Recording:
    """Wraps a fused-op kernel and notes every forward and backward as 'name.phase'."""

    def __init__(self, kernel, name, calls):
        self.kernel, self.name, self.calls = kernel, name, calls

    def supports(self, fn, *arrays):
        return self.kernel.supports(fn, *arrays)

    def forward(self, fn, *arrays):
        self.calls.append(f"{self.name}.forward")
        return self.kernel.forward(fn, *arrays)

    def backward(self, fn, *grads):
        self.calls.append(f"{self.name}.backward")
        return self.kernel.backward(fn, *grads)


# -- AdamW -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adamw_kernel_matches_the_formula_over_steps(raw_kernel, dtype):
    adamw = raw_kernel(AdamWKernel)
    rng = np.random.default_rng(4)
    n = 5000  # several blocks of the kernel
    param = rng.standard_normal(n).astype(dtype)
    state = [param.copy(), np.zeros(n, dtype), np.zeros(n, dtype)]
    expected = [param.copy(), np.zeros(n, dtype), np.zeros(n, dtype)]
    for step in range(1, 4):
        grad = rng.standard_normal(n).astype(dtype)
        hyper = (1e-2, 0.9, 0.95, 1e-6, 0.1, step)
        adamw(state[0], grad, state[1], state[2], *hyper)
        Device.adamw_update(CPU, expected[0], grad, expected[1], expected[2], *hyper)
    tolerance = {"rtol": 2e-6, "atol": 2e-7} if dtype == np.float32 else TOLERANCE["float64"]
    for actual, reference in zip(state, expected, strict=True):
        np.testing.assert_allclose(actual, reference, **tolerance)
    assert not np.allclose(state[0], param)


def test_adamw_kernel_supports_only_contiguous_native_buffers(emulated_library):
    adamw = AdamWKernel(emulated_library)
    flat = np.zeros(6, np.float32)
    assert adamw.supports(flat, flat, flat)
    strided = np.zeros((4, 6), np.float32)[:, ::2]
    assert not adamw.supports(strided, np.zeros_like(strided), np.zeros_like(strided))
    half = np.zeros(6, np.float16)
    assert not adamw.supports(half, half, half)


@NO_COMPILER
def test_adamw_optimizer_steps_through_the_kernel(emulated_library, monkeypatch):
    adamw = AdamWKernel(emulated_library)
    calls = []

    def update(param, *args):
        calls.append(param.size)
        adamw(param, *args)

    def train():
        minigrad.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 5), nn.GELU(), nn.Linear(5, 3))
        opt = optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
        x = minigrad.tensor(np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6))
        for _ in range(3):
            opt.zero_grad()
            (model(x) ** 2).mean().backward()
            opt.step()
        return [p.numpy() for p in model.parameters()]

    without = train()
    monkeypatch.setattr(CPU, "adamw_update", update)
    with_kernel = train()
    assert calls == [53] * 3  # one launch per step over the one flat buffer (53 parameters)
    for a, b in zip(with_kernel, without, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# -- Philox -------------------------------------------------------------------------------
def test_philox_matches_the_known_answer(raw_kernel):
    """Random123's known-answer vector for Philox4x32-10 with counter 0 and key 0: seed
    0 at offset 0, and integers over the whole 32-bit range are the words themselves."""
    words, offset = raw_kernel(PhiloxKernel).integers(0, 2 ** 32, (4,), "int64", 0, 0)
    assert [int(w) for w in words] == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    assert offset == 1
    uniform, _ = raw_kernel(PhiloxKernel).uniform((4,), "float32", 0, 0)
    np.testing.assert_array_equal(uniform, (words >> 8).astype(np.float32) * 2.0 ** -24)


def test_philox_draws_continue_one_stream_and_look_random(raw_kernel):
    philox = raw_kernel(PhiloxKernel)
    whole, end = philox.uniform((4096,), "float32", 42, 0)
    first, middle = philox.uniform((2048,), "float32", 42, 0)
    second, end2 = philox.uniform((2048,), "float32", 42, middle)
    np.testing.assert_array_equal(np.concatenate([first, second]), whole)
    assert end == end2 == 1024
    assert whole.min() >= 0 and whole.max() < 1 and abs(whole.mean() - 0.5) < 0.02
    for dtype in ("float32", "float64"):
        normal, _ = philox.normal((4096,), dtype, 42, 0)
        assert normal.dtype == dtype
        assert abs(normal.mean()) < 0.05 and abs(normal.std() - 1) < 0.05
    ints, _ = philox.integers(-3, 50000, (1001,), "int64", 7, 11)
    assert ints.min() >= -3 and ints.max() < 50000 and len(np.unique(ints)) > 900
    other, _ = philox.uniform((4096,), "float32", 43, 0)
    assert not np.array_equal(other, whole)
    with pytest.raises(ValueError, match="high - low"):
        philox.integers(0, 2 ** 33, (4,), "int64", 0, 0)


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
