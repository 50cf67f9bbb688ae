"""Layers against torch.nn with the same weights (forward and gradients), on both devices,
and a full training step on the 'strict' device without host transfers."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn

torch = pytest.importorskip("torch", reason="compares with PyTorch (the 'test' extra)")


def _copy_weights(ours: nn.Module, theirs: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.copy_(torch.from_numpy(dict(ours.named_parameters())[name].numpy()))


def _check_against_torch(ours, theirs, x: np.ndarray, device, atol=1e-5, as_ids=False):
    _copy_weights(ours, theirs)
    ours.to(device)
    xm = mg.tensor(x, device=device, requires_grad=not as_ids)
    xt = torch.from_numpy(x).requires_grad_(not as_ids)
    out_m, out_t = ours(xm), theirs(xt)
    np.testing.assert_allclose(out_m.numpy(), out_t.detach().numpy(), atol=atol, rtol=1e-5)
    weights = np.random.default_rng(0).standard_normal(out_t.shape).astype(np.float32)
    (out_m * mg.tensor(weights, device=device)).sum().backward()
    (out_t * torch.from_numpy(weights)).sum().backward()
    if not as_ids:
        np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), atol=atol, rtol=1e-5)
    ours_params = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours_params[name].grad.numpy(), p.grad.numpy(), atol=atol,
                                   rtol=1e-5, err_msg=name)


X = np.random.default_rng(1).standard_normal((2, 3, 6)).astype(np.float32)


@pytest.mark.parametrize("bias", [True, False])
def test_linear(device, bias):
    _check_against_torch(nn.Linear(6, 5, bias=bias), torch.nn.Linear(6, 5, bias=bias), X, device)


def test_embedding(device):
    ids = np.array([[0, 3, 3], [6, 1, 0]])
    _check_against_torch(nn.Embedding(7, 4), torch.nn.Embedding(7, 4), ids, device, as_ids=True)


@pytest.mark.parametrize("affine,bias", [(True, True), (True, False), (False, True)])
def test_layer_norm(device, affine, bias):
    ours = nn.LayerNorm(6, eps=1e-5, elementwise_affine=affine, bias=bias)
    theirs = torch.nn.LayerNorm(6, eps=1e-5, elementwise_affine=affine, bias=bias)
    for p in ours.parameters():  # not the trivial 1 / 0 start
        nn.init.normal_(p, generator=mg.Generator(2))
    _check_against_torch(ours, theirs, X, device)


def test_rms_norm(device):
    ours, theirs = nn.RMSNorm((3, 6), eps=1e-6), torch.nn.RMSNorm((3, 6), eps=1e-6)
    nn.init.normal_(ours.weight, generator=mg.Generator(3))
    _check_against_torch(ours, theirs, X, device)


@pytest.mark.parametrize("layer,reference", [
    (nn.GELU(), torch.nn.GELU()), (nn.GELU("tanh"), torch.nn.GELU("tanh")),
    (nn.ReLU(), torch.nn.ReLU()), (nn.SiLU(), torch.nn.SiLU()), (nn.Tanh(), torch.nn.Tanh()),
    (nn.Identity(), torch.nn.Identity()), (nn.Softmax(dim=0), torch.nn.Softmax(dim=0)),
    (nn.Softmax(dim=-1), torch.nn.Softmax(dim=-1))])
def test_activations(device, layer, reference):
    _check_against_torch(layer, reference, X, device)


@pytest.mark.parametrize("padding_idx", [5, 10, -6])
def test_embedding_padding_idx_out_of_range_raises(padding_idx):
    # It used to wrap around silently (padding_idx=5 of 5 became row 0).
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(5, 3, padding_idx=padding_idx)


def test_embedding_negative_padding_idx_and_repr_match_torch():
    ours, theirs = nn.Embedding(5, 3, padding_idx=-2), torch.nn.Embedding(5, 3, padding_idx=-2)
    assert ours.padding_idx == theirs.padding_idx == 3
    assert repr(ours) == repr(theirs) == "Embedding(5, 3, padding_idx=3)"


def test_dropout_train_eval_and_seed(device):
    x = mg.ones(200, 50, device=device)
    layer = nn.Dropout(0.3, generator=mg.Generator(4, device))
    out = layer(x).numpy()
    kept = out != 0
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    again = nn.Dropout(0.3, generator=mg.Generator(4, device))(x).numpy()
    np.testing.assert_array_equal(out, again)
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    with pytest.raises(ValueError, match="Dropout: p must be in"):
        nn.Dropout(1.5)


def test_linear_init_matches_pytorch_bounds():
    layer = nn.Linear(64, 300, generator=mg.Generator(5))
    bound = 1 / math.sqrt(64)
    for p in (layer.weight.numpy(), layer.bias.numpy()):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.9 * bound
    w = layer.weight.numpy()
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound  # U(-b, b) has std b/sqrt(3)


def test_layers_take_device_and_dtype():
    layer = nn.Linear(3, 2, device="strict", dtype="float64")
    assert layer.weight.device == "strict" and layer.weight.dtype == layer.weight.device.xp.float64
    norm = nn.LayerNorm(3, device="strict")
    np.testing.assert_array_equal(norm.weight.numpy(), np.ones(3))


def test_training_step_on_strict_makes_no_host_transfers():
    device = mg.get_device("strict")
    model = nn.Sequential(nn.Embedding(10, 8, device=device), nn.LayerNorm(8, device=device),
                          nn.Linear(8, 8, device=device), nn.GELU(), nn.Dropout(0.1),
                          nn.RMSNorm(8, device=device), nn.Linear(8, 10, device=device))
    optimizer = mg.optim.AdamW(model.parameters(), lr=1e-2)
    ids = mg.tensor(np.arange(12).reshape(3, 4) % 10, device=device)
    targets = mg.tensor((np.arange(12).reshape(3, 4) + 1) % 10, device=device)
    losses = []
    for _ in range(3):
        transfers = device.host_transfers
        logits = model(ids)
        loss = nn.functional.cross_entropy(logits.reshape(-1, 10), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        assert device.host_transfers == transfers
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.device == "strict" for p in model.parameters())
