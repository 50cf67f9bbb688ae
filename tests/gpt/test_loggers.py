"""TensorBoard and Weights & Biases loggers against the real packages: a tiny training run
through the command line logs to each, and the test reads back what was written
(TensorBoard's own EventAccumulator; W&B's offline run folder)."""

from __future__ import annotations

import json
import time

import pytest

from gpt import cli

WORDS = "the cat sat on a mat while a dog ran to the park and back again.\n"
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
        "--batch-size", "4", "--warmup", "2", "--eval-batches", "2", "--log-interval", "2",
        "--max-new-tokens", "12", "--no-progress", "--steps", "6", "--eval-interval", "3",
        "--histogram-interval", "3"]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(f"{i}: {WORDS}" for i in range(100)), encoding="utf-8")
    return path


def train(corpus, out, logger: str) -> None:
    code = cli.main(["train", "--data", str(corpus), "--out", str(out), "--name", "run",
                     "--logger", logger, *TINY])
    assert code == 0


def test_tensorboard_holds_scalars_hparams_histograms_and_samples(corpus, tmp_path):
    pytest.importorskip("tensorboardX", reason="the TensorBoard logger writes with tensorboardX")
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="reading event files back needs the tensorboard package")
    train(corpus, tmp_path, "tensorboard")
    events = event_accumulator.EventAccumulator(
        str(tmp_path / "run" / "tensorboard"), size_guidance={"histograms": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    for scalar in ("loss", "val_loss", "lr", "grad_norm", "tokens_per_s", "mfu"):
        assert scalar in tags["scalars"], (scalar, tags["scalars"])
    assert [e.step for e in events.Scalars("loss")] == [1, 2, 3, 4, 5, 6]
    assert [e.step for e in events.Scalars("val_loss")] == [3, 6]
    assert "weights/lm_head.weight" in tags["histograms"] or any(
        t.startswith("weights/") for t in tags["histograms"])
    grads = [t for t in tags["histograms"] if t.startswith("gradients/")]
    assert grads and [e.step for e in events.Histograms(grads[0])] == [3, 6]
    sample = [t for t in tags["tensors"] if t.startswith("sample")]
    assert sample, tags["tensors"]
    text = events.Tensors(sample[0])[0].tensor_proto.string_val[0].decode()
    assert text == (tmp_path / "run" / "samples.txt").read_text().split("\n", 1)[1].rstrip("\n")
    from tensorboard.plugins.hparams import plugin_data_pb2

    hparams = event_accumulator.EventAccumulator(str(tmp_path / "run" / "tensorboard" / "hparams"))
    hparams.Reload()
    content = hparams.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    assert session.hparams["model.n_layer"].number_value == 1
    assert session.hparams["train.histogram_interval"].number_value == 3
    assert hparams.Scalars("hparam/val_loss")[-1].value == events.Scalars("val_loss")[-1].value


def wandb_records(path) -> list:
    """The records of a W&B transaction log (`run-*.wandb`): a 7-byte header (":W&B", magic,
    version), then the LevelDB log format: 32 KiB blocks of records, each a 7-byte header
    (CRC32C, little-endian length, type: 1 full, 2 first, 3 middle, 4 last) and its bytes,
    holding `wandb_internal_pb2.Record` protobufs."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    records, pending, pos = [], b"", 7
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0 or len(chunk) < length:
            break  # the end, or a record the service is still writing: read again later
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def test_wandb_offline_run_holds_config_and_metrics(corpus, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="the W&B logger needs wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    train(corpus, tmp_path, "wandb")
    (log,) = (tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb")
    # W&B's service process may still be writing the log's tail when finish() returns:
    # read until the run's exit record is there.
    deadline = time.monotonic() + 60
    records = wandb_records(log)
    while not any(r.WhichOneof("record_type") == "exit" for r in records):
        assert time.monotonic() < deadline, "the W&B log has no exit record"
        time.sleep(0.2)
        records = wandb_records(log)
    config = {item.key: json.loads(item.value_json)
              for r in records if r.WhichOneof("record_type") == "run"
              for item in r.run.config.update}
    assert config["model"]["n_layer"] == 1 and config["train"]["histogram_interval"] == 3
    history = [{item.key or "/".join(item.nested_key): json.loads(item.value_json)
                for item in r.history.item}
               for r in records if r.WhichOneof("record_type") == "history"]
    losses = {h["_step"]: h["loss"] for h in history if "loss" in h}
    assert sorted(losses) == [1, 2, 3, 4, 5, 6]
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    expected = {r["step"]: r["loss"] for r in map(json.loads, metrics) if "loss" in r}
    assert losses == pytest.approx(expected, rel=1e-12)
    assert [h["_step"] for h in history if "val_loss" in h] == [3, 6]
    assert [h["_step"] for h in history if any(k.startswith("gradients/") for k in h)] == [3, 6]
    assert [h["_step"] for h in history if "sample/path" in h] == [6]  # an HTML media file
