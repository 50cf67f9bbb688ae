"""On an NVIDIA GPU (`pytest -m gpu`; skipped elsewhere, with the reason): every op,
value and gradient, CuPy against NumPy on the same inputs; random numbers drawn on the
device; the GPT's loss and gradients and a short training run on both devices; host
transfers of a training step; checkpoints across devices; TF32.

The fused kernels against their ops' array-API code on the GPU are in
test_cuda_kernels.py (its "cuda" cases)."""

import numpy as np
import pytest
from gpu_support import GPU_MARKS
from hypothesis import given, settings
from hypothesis import strategies as st
from op_specs import OP_SETTINGS, OP_SPECS, assert_runs_close, draw_case, run_minigrad

import minigrad
from gpt.model import GPT, GPTConfig
from minigrad import backends, io, optim
from minigrad.nn.utils import clip_grad_norm_

pytestmark = GPU_MARKS
TOLERANCES = {"float64": {"rtol": 1e-9, "atol": 1e-11}, "float32": {"rtol": 1e-4, "atol": 1e-5}}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("spec", OP_SPECS, ids=lambda spec: spec.name)
@settings(OP_SETTINGS, max_examples=10)
@given(data=st.data())
def test_every_op_matches_numpy(spec, dtype, data):
    case = draw_case(data, spec)
    # A fused op runs a CUDA kernel on one side and a NumPy kernel on the other.
    tolerance = (spec.tolerances if spec.composite else TOLERANCES)[dtype]
    assert_runs_close(run_minigrad(spec.fn, case, "cuda", dtype),
                      run_minigrad(spec.fn, case, "cpu", dtype), f"{spec.name} cuda vs cpu",
                      **tolerance)


def test_device_basics_and_counted_transfers():
    cuda = backends.get_device("cuda")
    assert cuda.kind == "cuda" and minigrad.get_device("cuda:0") is cuda
    assert set(cuda.fused_ops) == {"cross_entropy", "layer_norm",
                                   "scaled_dot_product_attention", "gelu"}
    uploads, transfers = cuda.host_uploads, cuda.host_transfers
    big = np.arange(100_000, dtype=np.float32)  # large enough for the pinned path
    t = minigrad.tensor(big, device="cuda")
    small = minigrad.tensor([1.0, 2.0], device="cuda")
    assert cuda.host_uploads - uploads == 2
    np.testing.assert_array_equal(t.numpy(), big)
    assert (small * 2).tolist() == [2.0, 4.0]
    assert cuda.host_transfers - transfers == 2
    back = t.to("cpu")
    assert back.device.name == "cpu" and np.array_equal(back.numpy(), big)
    with pytest.raises(TypeError, match="bfloat16"):
        minigrad.zeros(2, dtype="bfloat16", device="cuda")


def test_random_numbers_are_drawn_on_the_device_and_reproducible():
    gen = minigrad.Generator(123, "cuda")
    state = gen.get_state()
    a = minigrad.randn(1000, generator=gen, device="cuda")
    b = minigrad.randn(1000, generator=gen, device="cuda")
    gen.set_state(state)
    np.testing.assert_array_equal(minigrad.randn(1000, generator=gen).numpy(), a.numpy())
    assert not np.array_equal(a.numpy(), b.numpy())
    assert abs(a.numpy().mean()) < 0.15 and abs(a.numpy().std() - 1) < 0.15
    u = minigrad.rand(1000, generator=gen).numpy()
    assert u.min() >= 0 and u.max() < 1
    ints = minigrad.randint(3, 9, (1000,), generator=gen).numpy()
    assert ints.min() == 3 and ints.max() == 8
    assert minigrad.randn(4, generator=gen).device.name == "cuda:0"


def tiny_gpt(device, dropout=0.0):
    config = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32,
                       dropout=dropout)
    return GPT(config, generator=minigrad.Generator(0)).to(device)


def test_gpt_loss_and_gradients_match_the_cpu():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 50, (4, 16)), rng.integers(0, 50, (4, 16))
    results = []
    for device in ("cpu", "cuda"):
        model = tiny_gpt(device)
        _, loss = model(minigrad.tensor(x, device=device), minigrad.tensor(y, device=device))
        loss.backward()
        results.append((loss.item(), {n: p.grad.numpy() for n, p in model.named_parameters()}))
    (cpu_loss, cpu_grads), (gpu_loss, gpu_grads) = results
    assert abs(cpu_loss - gpu_loss) < 1e-4
    for name, grad in cpu_grads.items():
        np.testing.assert_allclose(gpu_grads[name], grad, rtol=1e-3, atol=1e-5, err_msg=name)


def test_training_loss_falls_the_same_way_on_both_devices():
    rng = np.random.default_rng(1)
    pattern = np.tile(np.arange(10), 40)  # a learnable sequence
    curves = []
    for device in ("cpu", "cuda"):
        model = tiny_gpt(device)
        opt = optim.AdamW(model.optimizer_groups(0.1), lr=3e-3)
        losses = []
        for _ in range(30):
            starts = rng.integers(0, len(pattern) - 17, 8)
            window = np.stack([pattern[s:s + 17] for s in starts])
            _, loss = model(minigrad.tensor(window[:, :-1], device=device),
                            minigrad.tensor(window[:, 1:], device=device))
            loss.backward()
            clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            losses.append(loss.detach())
        curves.append(minigrad.stack(losses).numpy())
        rng = np.random.default_rng(1)  # the same batches for the second device
    cpu, gpu = curves
    assert gpu[-1] < 0.5 * gpu[0]
    np.testing.assert_allclose(gpu, cpu, rtol=2e-2, atol=2e-2)


def test_training_step_makes_no_host_round_trips():
    cuda = backends.get_device("cuda")
    model = tiny_gpt("cuda", dropout=0.1)
    opt = optim.AdamW(model.optimizer_groups(0.1), lr=1e-3)
    rng = np.random.default_rng(2)
    for step in range(3):
        x, y = rng.integers(0, 50, (4, 16)), rng.integers(0, 50, (4, 16))
        before = (cuda.host_transfers, cuda.host_uploads)
        _, loss = model(minigrad.tensor(x, device="cuda"), minigrad.tensor(y, device="cuda"))
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        assert (cuda.host_transfers - before[0], cuda.host_uploads - before[1]) == (0, 2), step


def test_checkpoints_move_between_devices(tmp_path):
    model = tiny_gpt("cuda")
    opt = optim.AdamW(model.parameters(), lr=1e-3)
    x = minigrad.tensor(np.arange(16).reshape(1, 16) % 50, device="cuda")
    _, loss = model(x, x)
    loss.backward()
    opt.step()
    io.save_checkpoint(tmp_path / "gpu", model, opt, step=1)
    on_cpu = tiny_gpt("cpu")
    cpu_opt = optim.AdamW(on_cpu.parameters(), lr=1e-3)
    assert io.load_checkpoint(tmp_path / "gpu", on_cpu, cpu_opt, device="cpu")["step"] == 1
    for (name, a), (_, b) in zip(model.named_parameters(), on_cpu.named_parameters()):
        assert b.device.name == "cpu"
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    io.save_checkpoint(tmp_path / "cpu", on_cpu, cpu_opt, step=2)
    back = tiny_gpt("cuda")
    io.load_checkpoint(tmp_path / "cpu", back, optim.AdamW(back.parameters()), device="cuda")
    for (name, a), (_, b) in zip(model.named_parameters(), back.named_parameters()):
        assert b.device.name == "cuda:0"
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_tf32_is_an_opt_in_compute_type():
    import cupy
    from cupy import _core
    from cupy._core import _routines_linalg

    backends.get_device("cuda")
    try:
        backends.set_tf32(True)
        if cupy.cuda.Device().compute_capability >= "80":
            assert _core.get_compute_type(cupy.float32) == _routines_linalg.COMPUTE_TYPE_TF32
    finally:
        backends.set_tf32(False)
    assert _core.get_compute_type(cupy.float32) == _routines_linalg.COMPUTE_TYPE_DEFAULT
