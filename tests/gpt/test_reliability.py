"""Reliability of runs and datasets (issue 12): run folders that never collide and are
locked while in use, paths relative to the run folder, checkpoints only of healthy weights,
damaged records and files refused with the file and key named, every bad option refused
before anything is written. (Kills at every file operation: test_reliability_kills.py.)"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal

import numpy as np
import pytest

import minigrad as mg
from gpt import cli
from gpt.data.batches import RandomWindows
from gpt.lock import FolderLocked
from gpt.model import GPT, GPTConfig
from gpt.run import lock_run_dir, new_run_dir
from gpt.runlog import read_metrics
from gpt.train import TrainConfig, Trainer

WORDS = ("the cat sat on a mat while a dog ran to the park and back again; "
         "then it rained on the town, so everyone went home for tea.\n")
MODEL = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
         "--batch-size", "4", "--eval-batches", "2", "--log-interval", "2",
         "--max-new-tokens", "10", "--no-progress"]
TINY = [*MODEL, "--warmup", "2"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text("".join(f"{i}: {WORDS}" for i in range(120)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def finished_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert cli.main(["train", "--data", str(corpus), "--out", str(out), "--name", "tiny",
                     "--steps", "6", "--eval-interval", "3", "--checkpoint-interval", "3",
                     *TINY]) == 0
    return out / "tiny"


@pytest.fixture
def run(finished_run, tmp_path):
    """A copy of the finished run, free to damage."""
    return shutil.copytree(finished_run, tmp_path / "copy" / "run")


# -- run folders: exclusive, locked, movable -------------------------------------------
def test_default_run_names_never_collide(tmp_path, monkeypatch):
    monkeypatch.setattr("time.strftime", lambda fmt: "20261201-120000")  # the same second
    made = [new_run_dir(tmp_path, None) for _ in range(3)]
    assert [d.name for d, _ in made] == ["20261201-120000", "20261201-120000-2",
                                         "20261201-120000-3"]
    for _, lock in made:
        lock.release()


def test_a_run_folder_in_use_is_refused(run, corpus, capsys):
    lock = lock_run_dir(run)  # as a live training process holds it
    try:
        assert cli.main(["train", "--resume", str(run), "--no-progress"]) == 2
        assert f"in use by another process (pid {os.getpid()})" in capsys.readouterr().err
        with pytest.raises(FolderLocked):
            new_run_dir(run.parent, run.name)
    finally:
        lock.release()
    pid = os.fork()  # a process that took the lock and died without releasing it
    if pid == 0:
        lock_run_dir(run)
        os._exit(0)
    os.waitpid(pid, 0)
    assert (run / ".lock").read_text().strip() == str(pid)
    lock_run_dir(run).release()  # the dead process's lock is stale: taken over


def test_same_name_twice_gets_one_run(corpus, tmp_path, capsys):
    argv = ["train", "--data", str(corpus), "--out", str(tmp_path), "--name", "x",
            "--steps", "3", "--eval-interval", "0", *TINY]
    assert cli.main(argv) == 0
    assert cli.main([*argv, "--n-embd", "32"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert json.loads((tmp_path / "x" / "config.json").read_text())["model"]["n_embd"] == 16


def test_a_moved_run_folder_resumes_evaluates_and_samples(run, tmp_path, monkeypatch, capsys):
    assert json.loads((run / "config.json").read_text())["data"] == "data"
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(run, moved)
    decoy = tmp_path / "cwd"  # a folder with its own runs/<same name>/data
    shutil.copytree(moved, decoy / "copy" / "run")
    shutil.rmtree(decoy / "copy" / "run" / "data")
    monkeypatch.chdir(decoy)
    capsys.readouterr()
    assert cli.main(["eval", str(moved)]) == 0
    assert str(moved / "data") in capsys.readouterr().out
    assert cli.main(["sample", str(moved), "--max-new-tokens", "5"]) == 0
    assert cli.main(["train", "--resume", str(moved), "--no-progress"]) == 0
    assert f"({moved / 'data'})" in capsys.readouterr().out


def test_failed_data_check_leaves_no_run_folder(tmp_path, capsys):
    out = tmp_path / "runs"
    for name in (["--name", "x"], []):
        assert cli.main(["train", "--data", str(tmp_path / "missing.txt"), "--out", str(out),
                         *name, *TINY]) == 2
        assert "missing.txt is not found" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_stale_files_of_killed_writes_are_removed_on_the_next_start(run, capsys):
    stale = [run / ".model.safetensors.k1ll3d.tmp", run / ("training_state." + "ab" * 16 +
                                                           ".safetensors")]
    for path in stale:
        path.write_bytes(b"half")
    assert cli.main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert not any(path.exists() for path in stale)


# -- checkpoints: only healthy weights, SIGTERM saves ------------------------------------
@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")  # the overflow itself
def test_poisoned_weights_are_never_checkpointed(corpus, tmp_path, capsys):
    code = cli.main(["train", "--data", str(corpus), "--out", str(tmp_path), "--name", "p",
                     "--steps", "6", "--lr", "1e30", "--warmup", "0",
                     "--checkpoint-interval", "1", "--eval-interval", "0", *MODEL])
    assert code == 1
    assert "not saving them over the previous checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "p" / "model.safetensors").exists()


@pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
def test_eval_of_overflowing_weights_is_an_error_not_nan(run, capsys):
    from minigrad import io

    weights = io.load_safetensors(run / "model.safetensors")
    io.save_safetensors({k: v.numpy() * np.float32(1e30) for k, v in weights.items()},
                        run / "model.safetensors")
    assert cli.main(["eval", str(run)]) == 2
    assert "the loss is nan: the model's weights overflow" in capsys.readouterr().err


class SigtermAt:
    """Batches that send this process SIGTERM while drawing batch `n`."""

    def __init__(self, batches, n):
        self.batches, self.n, self.drawn = batches, n, 0
        self.tokens = batches.tokens

    def next_batch(self):
        self.drawn += 1
        if self.drawn == self.n:
            os.kill(os.getpid(), signal.SIGTERM)
        return self.batches.next_batch()

    def state_dict(self):
        return self.batches.state_dict()

    def load_state_dict(self, state):
        self.batches.load_state_dict(state)


def test_sigterm_stops_after_the_step_and_saves(tmp_path):
    tokens = np.arange(400) % 7
    config = TrainConfig(steps=10, batch_size=2, warmup=1, eval_interval=0,
                         checkpoint_interval=0, log_interval=1)
    model = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=2, n_embd=8),
                generator=mg.Generator(0))
    batches = SigtermAt(RandomWindows(tokens, 8, 2, seed=0), 3)
    trainer = Trainer(model, batches, None, config, tmp_path, progress=False)
    result = trainer.fit()
    assert (result.status, result.step, result.checkpoint_step) == ("interrupted", 3, 3)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # put back
    fresh = Trainer(GPT(model.config), RandomWindows(tokens, 8, 2), None, config, tmp_path,
                    progress=False)
    fresh.load_checkpoint()
    assert fresh.step == 3


# -- damaged records and files -----------------------------------------------------------
def test_a_torn_last_metrics_line_is_dropped_on_resume(tmp_path):
    tokens = np.arange(400) % 7
    model_config = GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=2, n_embd=8)

    def trainer(steps):
        config = TrainConfig(steps=steps, batch_size=2, warmup=1, eval_interval=0,
                             log_interval=1)
        return Trainer(GPT(model_config, generator=mg.Generator(0)),
                       RandomWindows(tokens, 8, 2, seed=0), None, config, tmp_path,
                       progress=False, stream=io.StringIO())

    assert trainer(4).fit().status == "completed"
    with open(tmp_path / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write('{"step": 5, "lo')  # the disk filled up mid-line
    resumed = trainer(6)
    resumed.load_checkpoint()
    assert resumed.fit().status == "completed"
    assert "metrics.jsonl: dropped a torn last line (line 5" in resumed.stream.getvalue()
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]


def test_a_damaged_metrics_line_is_named(run, capsys):
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    lines.insert(1, "{not json\n")
    (run / "metrics.jsonl").write_text("".join(lines))
    assert cli.main(["train", "--resume", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "metrics.jsonl line 2 is not a JSON record" in err and "Traceback" not in err


def _config(run):
    return json.loads((run / "config.json").read_text())


@pytest.mark.parametrize("damage,expected", [
    (lambda c: "{garbage", "is not valid JSON"),
    (lambda c: "[1, 2]", "expected a JSON object, got list"),
    (lambda c: {**c, "model": {**c["model"], "n_layer": "two"}},
     "key 'model': key 'n_layer' must be int, got 'two'"),
    (lambda c: {**c, "train": {**c["train"], "lr": None}}, "key 'lr' must be float"),
    (lambda c: {k: v for k, v in c.items() if k != "train"}, "expected the keys"),
    (lambda c: {**c, "model": {**c["model"], "n_layers": 2}}, "unknown key(s) 'n_layers'"),
    (lambda c: {**c, "train": {k: v for k, v in c["train"].items() if k != "seed"}},
     "missing key(s) 'seed'"),
    (lambda c: {**c, "data": 3}, "key 'data' must be a folder path"),
])
def test_a_malformed_config_is_one_clear_error(run, damage, expected, capsys):
    damaged = damage(_config(run))
    (run / "config.json").write_text(damaged if isinstance(damaged, str) else
                                     json.dumps(damaged))
    for argv in (["eval", str(run)], ["sample", str(run)],
                 ["train", "--resume", str(run), "--no-progress"]):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "config.json" in err and expected in err, (argv, err)
        assert "Traceback" not in err


def test_weights_of_another_config_are_refused(run, capsys):
    config = _config(run)
    config["model"]["n_embd"] = 32
    (run / "config.json").write_text(json.dumps(config))
    assert cli.main(["sample", str(run)]) == 2
    assert "model.safetensors does not fit the model of" in capsys.readouterr().err


def test_out_of_range_token_ids_are_refused(run, capsys):
    files = json.loads((run / "data" / "dataset.json").read_text())["files"]
    np.save(run / "data" / files["val"], np.full(50, 250, dtype=np.uint8))
    assert cli.main(["eval", str(run)]) == 2
    assert "holds token id 250, outside the vocabulary" in capsys.readouterr().err


def test_resuming_a_run_that_never_checkpointed(run, capsys):
    for path in run.glob("*.safetensors"):
        path.unlink()
    assert cli.main(["train", "--resume", str(run), "--no-progress"]) == 2
    assert "has no checkpoint to resume from" in capsys.readouterr().err


def test_binary_input_is_refused_and_mostly_removed_text_warned(tmp_path, capsys):
    binary = tmp_path / "program"
    binary.write_bytes(b"\x7fELF\x02\x01\x00\x00" + bytes(range(256)) * 4)
    assert cli.main(["train", "--data", str(binary), "--out", str(tmp_path / "runs"),
                     *TINY]) == 2
    assert "is a binary file (it holds NUL bytes)" in capsys.readouterr().err
    assert list((tmp_path / "runs").iterdir()) == []
    noisy = tmp_path / "noisy.txt"
    noisy.write_text("\x01\x02\x03\x04" * 500 + "some words " * 40, encoding="utf-8")
    assert cli.main(["prepare", "--data", str(noisy), "--out", str(tmp_path / "d")]) == 0
    assert "WARNING: cleaning removed 82% of the characters" in capsys.readouterr().out


# -- options: checked before anything is written ----------------------------------------
@pytest.mark.parametrize("flag,value", [
    ("--lr", "inf"), ("--min-lr", "nan"), ("--grad-clip", "nan"), ("--stride", "0"),
    ("--spike-threshold", "-1"), ("--dedup-lines-min-chars", "-5"), ("--seed", "-1"),
    ("--temperature", "nan"), ("--beta1", "1"), ("--beta2", "nan"), ("--weight-decay", "-0.1"),
    ("--top-p", "nan"),
])
def test_a_bad_training_option_is_named_before_anything_is_written(corpus, tmp_path, flag,
                                                                   value, capsys):
    out = tmp_path / "runs"
    assert cli.main(["train", "--data", str(corpus), "--out", str(out), *TINY,
                     flag, value]) == 2
    assert f"{flag} must be" in capsys.readouterr().err
    assert not out.exists() or list(out.iterdir()) == []


def test_bad_sampling_and_plan_options(finished_run, capsys):
    assert cli.main(["sample", str(finished_run), "--temperature", "nan"]) == 2
    assert "--temperature must be" in capsys.readouterr().err
    for tokens in ("inf", "nan", "0"):
        assert cli.main(["plan", "--tokens", tokens]) == 2
        assert "--tokens must be" in capsys.readouterr().err


def test_short_runs_get_a_short_default_warmup(corpus, tmp_path):
    assert TrainConfig().warmup == 100 and TrainConfig(steps=30).warmup == 3
    assert cli.main(["train", "--data", str(corpus), "--out", str(tmp_path), "--name", "s",
                     "--steps", "30", "--eval-interval", "0", *MODEL]) == 0
    assert json.loads((tmp_path / "s" / "config.json").read_text())["train"]["warmup"] == 3


# -- run folders: names, files in the way, resume flags, live runs -----------------------
@pytest.mark.parametrize("name", ["a/b", "..", ".", ""])
def test_a_name_that_is_not_one_folder_is_refused_before_anything_is_written(corpus, tmp_path,
                                                                            name, capsys):
    out = tmp_path / "runs"
    assert cli.main(["train", "--data", str(corpus), "--out", str(out), "--name", name,
                     *TINY]) == 2
    assert f"--name must be a single folder name (no '/', not '.' or '..'), got {name!r}" in \
        capsys.readouterr().err
    assert not out.exists()


def test_a_file_where_a_folder_should_be_is_named(corpus, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    for argv in (["--out", str(blocker)], ["--out", str(blocker / "below")],
                 ["--out", str(tmp_path), "--name", "blocker"]):
        assert cli.main(["train", "--data", str(corpus), *argv, *TINY]) == 2
        err = capsys.readouterr().err
        assert "a file is in the way" in err and "Errno" not in err, err
    assert cli.main(["prepare", "--data", str(corpus), "--out", str(blocker)]) == 2
    assert f"dataset folder {blocker}: a file is in the way" in capsys.readouterr().err
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("flags", [["--name", "other"], ["--out", "elsewhere"],
                                   ["--tokenizer", "bpe", "--vocab-size", "300"],
                                   ["--val-fraction", "0.5"], ["--ascii-only"]])
def test_resume_refuses_the_data_and_folder_flags_it_would_ignore(run, flags, capsys):
    assert cli.main(["train", "--resume", str(run), "--no-progress", *flags]) == 2
    err = capsys.readouterr().err
    assert f"what an unbroken run would; {flags[0]}" in err and "cannot change" in err


def test_resuming_a_live_run_before_its_first_checkpoint_says_it_is_in_use(run, capsys):
    for path in run.glob("*.safetensors"):
        path.unlink()
    lock = lock_run_dir(run)  # as the process still training towards its first save
    try:
        assert cli.main(["train", "--resume", str(run), "--no-progress"]) == 2
        assert "is in use by another process" in capsys.readouterr().err
    finally:
        lock.release()


def test_sample_and_eval_of_a_fine_tuning_run_point_to_chat(run, capsys):
    config = _config(run)
    (run / "config.json").write_text(json.dumps({**config, "finetune": {"kind": "instruct"}}))
    for argv in (["sample", str(run)], ["eval", str(run)]):
        assert cli.main(argv) == 2
        assert "is a fine-tuning run: talk to it with `python -m gpt chat`" in \
            capsys.readouterr().err


# -- damaged files: metrics records, token files, tokenizers -----------------------------
@pytest.mark.parametrize("line", ['{"loss": 1.0}', '{"step": "3", "loss": 1.0}'])
def test_a_metrics_record_without_an_integer_step_is_named(run, line, capsys):
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    lines.insert(1, line + "\n")
    (run / "metrics.jsonl").write_text("".join(lines))
    for argv in (["train", "--resume", str(run), "--no-progress"], ["report", str(run)]):
        assert cli.main(argv) == 2
        assert "metrics.jsonl line 2 has no integer 'step'" in capsys.readouterr().err


@pytest.mark.parametrize("array", [np.zeros(100, dtype=np.float32),
                                   np.zeros((10, 10), dtype=np.uint8),
                                   np.zeros(100, dtype=np.int8)])
def test_a_token_file_of_another_dtype_or_shape_is_refused(run, array, capsys):
    files = json.loads((run / "data" / "dataset.json").read_text())["files"]
    np.save(run / "data" / files["val"], array)
    assert cli.main(["eval", str(run)]) == 2
    assert "not a row of unsigned token ids" in capsys.readouterr().err


def test_missing_tokenizer_files_are_named(run, capsys):
    files = json.loads((run / "data" / "dataset.json").read_text())["files"]
    (run / "data" / files["tokenizer"]).unlink()
    assert cli.main(["eval", str(run)]) == 2
    assert f"dataset: no tokenizer file at {run / 'data' / files['tokenizer']}" in \
        capsys.readouterr().err
    (run / "tokenizer.json").unlink()
    assert cli.main(["sample", str(run)]) == 2
    assert "has no tokenizer.json, the run's tokenizer" in capsys.readouterr().err


def test_eval_batch_size_and_an_overflowing_plan_are_named(finished_run, capsys):
    assert cli.main(["eval", str(finished_run), "--batch-size", "0"]) == 2
    assert "--batch-size must be >= 1" in capsys.readouterr().err
    assert cli.main(["plan", "--tokens", "1e300"]) == 2
    assert "their training FLOPs overflow a float" in capsys.readouterr().err


@pytest.mark.parametrize("flags, named", [
    (["--tokenizer", "bpe", "--vocab-size", "300"], "--tokenizer, --vocab-size"),
    (["--val-fraction", "0.2"], "--val-fraction"),
    (["--ascii-only"], "--ascii-only"),
])
@pytest.mark.parametrize("command", ["train", "prepare"])
def test_text_flags_beside_a_prepared_dataset_are_refused(command, flags, named, finished_run,
                                                          tmp_path, capsys):
    """A dataset folder has its tokenizer, split and cleaning: the flags that make them
    would be ignored silently, so they are refused, and nothing is written."""
    out = tmp_path / "out"
    argv = [command, "--data", str(finished_run / "data"), *flags, "--out", str(out)]
    assert cli.main(argv + (["--steps", "4", *TINY] if command == "train" else [])) == 2
    assert (f"is a prepared dataset folder, with its own tokenizer, split and cleaning: "
            f"{named} would be ignored") in capsys.readouterr().err
    assert not out.exists()


def test_prepare_names_vocab_size_without_bpe_and_the_val_fraction_flag(corpus, tmp_path,
                                                                       capsys):
    out = tmp_path / "data"
    assert cli.main(["prepare", "--data", str(corpus), "--vocab-size", "50", "--out",
                     str(out)]) == 2
    assert "--vocab-size is for --tokenizer bpe, not 'char'" in capsys.readouterr().err
    assert cli.main(["prepare", "--data", str(corpus), "--val-fraction", "1", "--out",
                     str(out)]) == 2
    assert "--val-fraction must be >= 0 and < 1" in capsys.readouterr().err
    assert not out.exists()


def test_a_full_disk_while_preparing_names_the_dataset_folder(corpus, tmp_path, monkeypatch,
                                                              capsys):
    """The scratch files' writes fail without a file name (ENOSPC): the message names the
    dataset folder, and no half-made dataset is left."""
    import errno

    from gpt.data import dataset

    def full(self, *args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(dataset._Job, "_encode", full)
    out = tmp_path / "data"
    assert cli.main(["prepare", "--data", str(corpus), "--out", str(out), "--no-progress"]) == 2
    assert (f"No space left on device while preparing the dataset; its previous contents, "
            f"if any, are kept: '{out}'") in capsys.readouterr().err
    assert not out.exists() or not [name for name in os.listdir(out) if name != ".lock"]


def test_a_full_disk_while_logging_names_the_metrics_file(tmp_path):
    import errno

    from gpt.runlog import MetricsLog

    log = MetricsLog(tmp_path / "metrics.jsonl")

    class FullDisk(io.StringIO):
        def flush(self):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    log._file.close()
    log._file = FullDisk()
    with pytest.raises(OSError, match=r"No space left on device: '.*metrics\.jsonl'$"):
        log.log({"step": 1, "loss": 2.0})
    assert log.count == 0
