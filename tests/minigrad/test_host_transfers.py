"""A training step makes no hidden host round trips.

On the GPU stand-in ('strict') every device-to-host copy is counted (`host_transfers`),
and so is every upload of host data (`host_uploads`). A step may upload its batch
(inputs and targets) and nothing else, and may read nothing back: the loss reaches the
host only when the user fetches it, once per logging interval. This holds for a small
minigrad.nn model, for the GPT, and for the GPT trainer.
"""

import numpy as np
import pytest

import minigrad
import minigrad.nn.functional as F
from gpt.model import GPT, GPTConfig
from minigrad import backends, nn, optim
from minigrad.nn.utils import clip_grad_norm_


@pytest.fixture
def strict():
    return backends.get_device("strict")


class Counter:
    """Transfers and uploads on a device since the last `take()`."""

    def __init__(self, device):
        self.device = device
        self.take()

    def take(self) -> tuple[int, int]:
        now = (self.device.host_transfers, self.device.host_uploads)
        delta = (now[0] - self.start[0], now[1] - self.start[1]) if hasattr(self, "start") else None
        self.start = now
        return delta


class SmallModel(nn.Module):
    def __init__(self, vocab: int, width: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.norm = nn.LayerNorm(width)
        self.hidden = nn.Linear(width, 2 * width)
        self.act = nn.GELU(approximate="tanh")
        self.dropout = nn.Dropout(0.1)
        self.out = nn.Linear(2 * width, vocab)

    def forward(self, ids, targets):
        h = self.act(self.hidden(self.norm(self.embed(ids))))
        q = h.reshape(ids.shape[0], 1, ids.shape[1], -1)  # one head: causal attention
        h = F.scaled_dot_product_attention(q, q, q, is_causal=True).reshape(h.shape)
        logits = self.out(self.dropout(h))  # (B, T, V): one row per position
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def batches(vocab: int, shape, steps: int):
    rng = np.random.default_rng(0)
    return [(rng.integers(0, vocab, shape), rng.integers(0, vocab, shape)) for _ in range(steps)]


def test_small_model_steps_upload_the_batch_and_read_nothing(strict):
    minigrad.manual_seed(0)
    model = SmallModel(vocab=11, width=8).to(strict)
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    data = batches(11, (2, 5), steps=6)
    counter = Counter(strict)
    losses = []
    for step, (x, y) in enumerate(data, start=1):
        loss = model(minigrad.tensor(x, device=strict), minigrad.tensor(y, device=strict))
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        losses.append(loss.detach())
        assert counter.take() == (0, 2), f"step {step}: (transfers, uploads)"
        if step % 3 == 0:  # the logging interval: one explicit fetch
            fetched = minigrad.stack(losses).numpy()
            losses.clear()
            assert counter.take() == (1, 0)
            assert np.isfinite(fetched).all()


def test_gpt_training_step_makes_no_host_round_trips(strict):
    config = GPTConfig(vocab_size=13, block_size=6, n_layer=2, n_head=2, n_embd=8,
                       dropout=0.1)
    model = GPT(config, generator=minigrad.Generator(0)).to(strict)
    opt = optim.AdamW(model.optimizer_groups(0.1), lr=1e-2)
    data = batches(13, (2, 6), steps=3)
    counter = Counter(strict)
    for x, y in data:
        _, loss = model(minigrad.tensor(x, device=strict), minigrad.tensor(y, device=strict))
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        assert counter.take() == (0, 2)
    loss.item()
    assert counter.take() == (1, 0)


def test_gpt_trainer_steps_and_fetches_once_per_interval(strict, tmp_path, monkeypatch):
    import gpt.train as train

    monkeypatch.setattr(train, "matmul_peak_flops", lambda device: 1e12)
    config = GPTConfig(vocab_size=13, block_size=6, n_layer=1, n_head=2, n_embd=8)
    model = GPT(config, generator=minigrad.Generator(0)).to(strict)
    tokens = np.random.default_rng(1).integers(0, 13, 200)
    train_config = train.TrainConfig(steps=4, batch_size=2, warmup=1, device="strict")
    trainer = train.Trainer(model, train.make_batches(tokens, 6, train_config), None,
                            train_config, tmp_path, progress=False)
    counter = Counter(strict)
    for _ in range(3):
        trainer.train_step()
        assert counter.take() == (0, 2)
    trainer.flush()  # losses and gradient norms of the three steps, together
    assert counter.take() == (1, 0)
