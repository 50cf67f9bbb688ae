"""Checkpoints: a resumed run continues bit-exactly (weights, optimizer, schedule, RNG);
cross-device loads; an interrupted save keeps the previous checkpoint, damaged files are
refused clearly, non-finite state is never saved. (Kills at every file operation of a save:
tests/gpt/test_reliability_kills.py.)"""

import json
import os

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.io import (
    CheckpointError,
    SafetensorsError,
    load_checkpoint,
    safetensors_metadata,
    save_checkpoint,
)
from minigrad.io.checkpoint import MODEL_FILE, NonFiniteStateError, state_file
from minigrad.optim.lr_scheduler import WarmupCosine

X = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)


def _setup(seed, device="cpu"):
    gen = mg.Generator(seed)
    model = nn.Sequential(nn.Linear(4, 8, generator=gen), nn.GELU(), nn.Dropout(0.2),
                          nn.Linear(8, 1, generator=gen)).to(device)
    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    other = [p for n, p in model.named_parameters() if n.endswith("bias")]
    optimizer = optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": other, "weight_decay": 0.0}], lr=0.05)
    return model, optimizer, WarmupCosine(optimizer, 2, 10, 0.001)


def _train(model, optimizer, scheduler, steps, device="cpu"):
    losses = []
    x = mg.tensor(X, device=device)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = (model(x) ** 2).mean()  # dropout draws from the default generator
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


def test_resume_continues_bit_exactly(tmp_path):
    mg.manual_seed(1)
    model, optimizer, scheduler = _setup(0)
    _train(model, optimizer, scheduler, 3)
    save_checkpoint(tmp_path / "ckpt", model, optimizer, scheduler, step=3,
                    config={"layers": [4, 8, 1]})
    expected = _train(model, optimizer, scheduler, 4)

    mg.manual_seed(99)  # a different RNG stream, undone by the load
    model2, optimizer2, scheduler2 = _setup(5)
    extra = load_checkpoint(tmp_path / "ckpt", model2, optimizer2, scheduler2)
    assert extra == {"step": 3, "config": {"layers": [4, 8, 1]}}
    assert scheduler2.last_step == 3
    assert _train(model2, optimizer2, scheduler2, 4) == expected
    for a, b in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    s1, s2 = optimizer.state_dict(), optimizer2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for i in s1["state"]:
        assert s1["state"][i]["step"] == s2["state"][i]["step"] == 7
        np.testing.assert_array_equal(s1["state"][i]["exp_avg_sq"].numpy(),
                                      s2["state"][i]["exp_avg_sq"].numpy())


def test_checkpoint_files_are_plain_safetensors(tmp_path):
    model, optimizer, _ = _setup(0)
    _train(model, optimizer, WarmupCosine(optimizer, 2, 10), 1)
    save_checkpoint(tmp_path, model, optimizer)
    safetensors = pytest.importorskip("safetensors.numpy", reason="reads the files with the "
                                      "safetensors package")
    weights = safetensors.load_file(tmp_path / MODEL_FILE)
    assert sorted(weights) == ["0.bias", "0.weight", "3.bias", "3.weight"]
    np.testing.assert_array_equal(weights["0.weight"], model[0].weight.numpy())
    save_id = safetensors_metadata(tmp_path / MODEL_FILE)["minigrad.save_id"]
    moments = safetensors.load_file(tmp_path / state_file(save_id))
    assert "optimizer.0.exp_avg" in moments and "optimizer.3.exp_avg_sq" in moments
    state = json.loads(safetensors_metadata(tmp_path / state_file(save_id))
                       ["minigrad.training_state"])
    assert set(state["rng"]) == {"minigrad", "python"}


@pytest.mark.parametrize("source,target", [("strict", "cpu"), ("cpu", "strict")])
def test_saved_on_one_device_resumes_on_another(tmp_path, source, target):
    model, optimizer, scheduler = _setup(0, source)
    _train(model, optimizer, scheduler, 2, source)
    save_checkpoint(tmp_path, model, optimizer, scheduler)
    model2, optimizer2, scheduler2 = _setup(3, "cpu")
    load_checkpoint(tmp_path, model2, optimizer2, scheduler2, device=target)
    assert all(p.device == target for p in model2.parameters())
    for a, b in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    model.eval()
    model2.eval()
    for m, o, s, d in ((model, optimizer, scheduler, source), (model2, optimizer2, scheduler2,
                                                                target)):
        _train(m, o, s, 2, d)
    for a, b in zip(model.parameters(), model2.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_weights_only(tmp_path):
    model, _, _ = _setup(0)
    save_checkpoint(tmp_path, model)
    model2, optimizer2, scheduler2 = _setup(1)
    assert load_checkpoint(tmp_path, model2) == {}
    np.testing.assert_array_equal(model[0].weight.numpy(), model2[0].weight.numpy())
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        load_checkpoint(tmp_path, model2, optimizer2)
    with pytest.raises(CheckpointError, match="holds no scheduler state"):
        load_checkpoint(tmp_path, model2, scheduler=scheduler2)


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, optimizer, scheduler = _setup(0)
    save_checkpoint(tmp_path, model, optimizer, scheduler, step=1)
    old_files = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    _train(model, optimizer, scheduler, 1)
    from minigrad.io import checkpoint

    real, calls = checkpoint.save_safetensors, []

    def crash_before_weights(tensors, path, metadata=None):
        calls.append(os.path.basename(path))
        if os.path.basename(path) == MODEL_FILE:
            raise KeyboardInterrupt  # the process dies between the two writes
        real(tensors, path, metadata)

    monkeypatch.setattr(checkpoint, "save_safetensors", crash_before_weights)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, model, optimizer, scheduler, step=2)
    assert calls[1] == MODEL_FILE and calls[0].startswith("training_state.")
    for name, data in old_files.items():
        assert (tmp_path / name).read_bytes() == data  # the previous checkpoint is whole
    model2, optimizer2, scheduler2 = _setup(1)
    assert load_checkpoint(tmp_path, model2, optimizer2, scheduler2) == {"step": 1}
    monkeypatch.undo()
    save_checkpoint(tmp_path, model, optimizer, scheduler, step=3)  # drops the orphan
    assert len(os.listdir(tmp_path)) == 2
    assert load_checkpoint(tmp_path, model2, optimizer2, scheduler2) == {"step": 3}


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_so(tmp_path, monkeypatch):
    """The weights' write fails (ENOSPC at fsync, as a full disk does): the new training
    state is removed again, the previous checkpoint stays whole, and the error says so."""
    import errno

    from minigrad.io import atomic

    model, optimizer, scheduler = _setup(0)
    save_checkpoint(tmp_path, model, optimizer, scheduler, step=1)
    old_files = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    _train(model, optimizer, scheduler, 1)
    real_fsync, synced = os.fsync, []

    def full_on_the_weights(fd):
        synced.append(fd)
        if len(synced) == 3:  # the state file, its folder, then the weights
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", full_on_the_weights)
    with pytest.raises(OSError, match="this checkpoint was not saved, the previous one in "
                                      ".* is kept") as caught:
        save_checkpoint(tmp_path, model, optimizer, scheduler, step=2)
    monkeypatch.undo()
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == os.path.join(tmp_path, MODEL_FILE)
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)} == old_files
    model2, optimizer2, scheduler2 = _setup(1)
    assert load_checkpoint(tmp_path, model2, optimizer2, scheduler2) == {"step": 1}


def test_non_finite_state_is_not_saved(tmp_path):
    model, optimizer, scheduler = _setup(0)
    _train(model, optimizer, scheduler, 1)
    save_checkpoint(tmp_path, model, optimizer, step=1)
    before = sorted(os.listdir(tmp_path))
    optimizer.state_dict()["state"][0]["exp_avg_sq"].data[0, 0] = np.inf
    with pytest.raises(NonFiniteStateError, match=r"optimizer\.0\.exp_avg_sq"):
        save_checkpoint(tmp_path, model, optimizer, step=2)
    model[0].weight.data[1, 1] = np.nan
    with pytest.raises(NonFiniteStateError, match=r"0\.weight"):
        save_checkpoint(tmp_path, model, step=2)
    assert sorted(os.listdir(tmp_path)) == before
    assert load_checkpoint(tmp_path, _setup(1)[0]) == {"step": 1}


def test_corrupted_and_truncated_checkpoints(tmp_path):
    model, optimizer, _ = _setup(0)
    save_checkpoint(tmp_path, model, optimizer)
    weights = tmp_path / MODEL_FILE
    raw = weights.read_bytes()
    weights.write_bytes(raw[:-3])
    with pytest.raises(SafetensorsError, match="truncated"):
        load_checkpoint(tmp_path, _setup(1)[0])
    flipped = bytearray(raw)
    flipped[-3] ^= 1
    weights.write_bytes(bytes(flipped))
    before = _setup(1)[0]
    reference = before[0].weight.numpy().copy()
    with pytest.raises(SafetensorsError, match="checksum mismatch"):
        load_checkpoint(tmp_path, before)
    np.testing.assert_array_equal(before[0].weight.numpy(), reference)  # untouched


def test_mismatched_model_lists_keys(tmp_path):
    model, _, _ = _setup(0)
    save_checkpoint(tmp_path, model)
    other = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Dropout(0.2), nn.Linear(8, 2),
                          nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match=r"missing keys \(2\): 4.weight, 4.bias; "
                                           r"mis-shaped keys \(2\): 3.weight"):
        load_checkpoint(tmp_path, other)


def test_extra_must_be_json(tmp_path):
    with pytest.raises(TypeError, match="extra values .* must be JSON-serialisable"):
        save_checkpoint(tmp_path, _setup(0)[0], note=object())
