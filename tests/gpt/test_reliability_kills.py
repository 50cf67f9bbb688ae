"""A kill at any moment leaves a complete, consistent state: the new one or the previous
one. Each test counts the file operations of a save (through `minigrad.io.atomic`'s
fault hook), then, for every N, forks a child that is killed (os._exit, no cleanup, as
SIGKILL or a power loss would) just before its N-th file operation, and checks what the
folder holds afterwards."""

from __future__ import annotations

import os

import numpy as np
import pytest

import bpe
import minigrad as mg
from gpt.data.dataset import Dataset, prepare
from gpt.run import lock_run_dir
from minigrad import nn, optim
from minigrad.io import atomic, load_checkpoint, save_checkpoint

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="kills a forked child")
KILLED = 86


def count_operations(action) -> list[tuple[str, str]]:
    """The file operations `action` performs, in order."""
    seen = []
    atomic.fault_hook = lambda operation, path: seen.append((operation, os.path.basename(path)))
    try:
        action()
    finally:
        atomic.fault_hook = None
    return seen


def run_killed_at(n: int, action) -> int:
    """Run `action` in a forked child killed before its n-th file operation; returns the
    child's exit status (KILLED, or 0 if it finished first)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        calls = [0]

        def kill_at_n(operation, path):
            calls[0] += 1
            if calls[0] == n:
                os._exit(KILLED)

        status = 1
        try:
            atomic.fault_hook = kill_at_n
            action()
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def every_kill_point(action, folder):
    """Yield (n, operation) for each file operation of `action`, after killing a run of
    it there that started from the files `folder` holds now; and finally (len + 1, None)
    after an unbroken run."""
    original = {p.name: p.read_bytes() for p in folder.iterdir()}

    def reset():
        for p in folder.iterdir():
            p.unlink()
        for name, data in original.items():
            (folder / name).write_bytes(data)

    operations = count_operations(action)
    assert operations, "the action wrote nothing"
    for n, operation in enumerate([*operations, None], start=1):
        reset()
        assert run_killed_at(n, action) == (KILLED if operation else 0), (n, operation)
        yield n, operation


# -- checkpoints --------------------------------------------------------------------------
def _model_and_optimizer():
    gen = mg.Generator(0)
    model = nn.Sequential(nn.Linear(4, 8, generator=gen), nn.GELU(), nn.Linear(8, 2,
                                                                                 generator=gen))
    return model, optim.AdamW(model.parameters(), lr=1e-2)


def _train_step(model, optimizer):
    x = mg.tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    (model(x) ** 2).sum().backward()
    optimizer.step()
    optimizer.zero_grad()


def _snapshot(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_checkpoint_survives_a_kill_at_every_file_operation(tmp_path):
    model, optimizer = _model_and_optimizer()
    _train_step(model, optimizer)
    folder = tmp_path / "run"
    save_checkpoint(folder, model, optimizer, step=1)
    old = _snapshot(model)
    _train_step(model, optimizer)
    new = _snapshot(model)

    def save_new():
        save_checkpoint(folder, model, optimizer, step=2)

    steps_seen = set()
    for n, operation in every_kill_point(save_new, folder):
        fresh, fresh_optimizer = _model_and_optimizer()
        step = load_checkpoint(folder, fresh, fresh_optimizer)["step"]
        expected = old if step == 1 else new
        for key, value in _snapshot(fresh).items():
            np.testing.assert_array_equal(value, expected[key], err_msg=f"kill {n} {operation}")
        steps_seen.add(step)
        lock_run_dir(folder).release()  # the next start cleans up what the kill left
        assert len(os.listdir(folder)) == 3, (n, operation, os.listdir(folder))  # + .lock
    assert steps_seen == {1, 2}  # some kills kept the old checkpoint, later ones the new


# -- dataset folders ----------------------------------------------------------------------
def _prepare(folder, text):
    return prepare(folder, [text], ["corpus.txt"], log=lambda message: None)


def test_dataset_prepare_survives_a_kill_at_every_file_operation(tmp_path):
    folder = tmp_path / "data"
    old_text, new_text = "abc abc abd " * 20, "xyz zzy " * 30
    old = _prepare(folder, old_text)
    old_train, old_chars = np.array(old.train), old.tokenizer.chars

    outcomes = set()
    for n, operation in every_kill_point(lambda: _prepare(folder, new_text), folder):
        loaded = Dataset.load(folder)
        is_new = loaded.tokenizer.chars != old_chars
        text = new_text if is_new else old_text
        decoded = loaded.tokenizer.decode(np.concatenate([loaded.train, loaded.val]).tolist())
        assert decoded == text.strip(), (n, operation)
        if not is_new:
            np.testing.assert_array_equal(loaded.train, old_train)
        outcomes.add(is_new)
        _prepare(folder, text)  # the next prepare cleans up what the kill left
        assert len(list(folder.iterdir())) == 5, (n, operation, sorted(os.listdir(folder)))
    assert outcomes == {False, True}


# -- tokenizer files ----------------------------------------------------------------------
def test_tokenizer_save_survives_a_kill_at_every_file_operation(tmp_path):
    path = tmp_path / "tok.json"
    old = bpe.Tokenizer.train(["hello hello world"], vocab_size=260)
    new = bpe.Tokenizer.train(["abcabc abcabc xyz"], vocab_size=262)
    old.save(path)

    outcomes = set()
    for n, operation in every_kill_point(lambda: new.save(path), tmp_path):
        loaded = bpe.load(path)
        assert loaded.vocab_size in (260, 262), (n, operation)
        reference = new if loaded.vocab_size == 262 else old
        assert loaded.encode("abcabc hello") == reference.encode("abcabc hello")
        outcomes.add(loaded.vocab_size)
        atomic.remove_stale_temporaries(tmp_path)  # what the next start does
        assert os.listdir(tmp_path) == ["tok.json"]
    assert outcomes == {260, 262}
