"""Writes the chapter notebooks (notebooks/*.ipynb) from the cells below, outputs stripped.

The cells here are the source of the notebooks: edit them here and run
`python notebooks/build.py`, so the committed .ipynb files stay output-free (small diffs;
CI executes every notebook with nbmake, see notebooks/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from minigrad.io.atomic import write_text  # the one atomic writer

HERE = Path(__file__).resolve().parent

TOKENIZATION = [
    ("md", """# 1. Tokenization

Text becomes token ids with byte-level BPE. First the plain reference trainer
(`bpe/reference.py`, the definition: every merge recounts every pair), then the fast
incremental trainer behind `bpe.Tokenizer.train`; both learn the same merges. Last, the
sliding window that cuts token ids into (input, target) training pairs."""),
    ("code", """from bpe import Tokenizer, reference
from bpe.corpus import builtin_corpus

text = builtin_corpus()[:4000]  # a slice of the interpreter's own documentation
print(text[:300])"""),
    ("md", "The reference trainer: count pairs, merge the most frequent, repeat."),
    ("code", """vocab_size = 256 + 30
plain_merges = reference.train([text], vocab_size)
ranks = reference.ranks_from_merges(plain_merges)
token_bytes = {token: data for data, token in ranks.items()}
for k, (left, right) in enumerate(plain_merges[:10]):
    print(256 + k, token_bytes[left], "+", token_bytes[right], "->", token_bytes[256 + k])"""),
    ("md", "The fast trainer learns exactly the same merges:"),
    ("code", """tok = Tokenizer.train(text, vocab_size=vocab_size)
print(tok)
print("same merges:", tok.merges == plain_merges)
assert tok.merges == plain_merges"""),
    ("code", """ids = tok.encode("The return statement leaves the function.")
print(len(ids), "tokens:", [tok.decode_single_token_bytes(i) for i in ids])
assert tok.decode(ids) == "The return statement leaves the function.\""""),
    ("md", """## Sliding-window samples

`gpt.data.SlidingWindows` cuts windows of `max_length` tokens every `stride` tokens; the
targets are the inputs shifted by one token (the next token to predict)."""),
    ("code", """from gpt.data import SlidingWindows

ids = tok.encode(text)
windows = SlidingWindows(ids, max_length=8, stride=8, batch_size=2, shuffle=False)
x, y = windows.next_batch()
print("inputs :", x[0].tolist())
print("targets:", y[0].tolist())
print(repr(tok.decode(x[0].tolist())), "->", repr(tok.decode(y[0].tolist())))
assert (x[0, 1:] == y[0, :-1]).all()"""),
]

ATTENTION = [
    ("md", """# 2. Attention

`minigrad.nn.functional.scaled_dot_product_attention` is a fused op (one `Function`, a
hand-written backward); its composite twin is built from primitive ops (matmul, where,
softmax). Both give the same values and gradients; `gradcheck` checks the fused backward
against finite differences in float64."""),
    ("code", """import numpy as np

import minigrad as mg
from minigrad.nn import functional as F

g = mg.Generator(0)
B, H, T, D = 2, 2, 5, 4
q, k, v = (mg.randn(B, H, T, D, generator=g, requires_grad=True) for _ in range(3))

def grads(attention):
    for t in (q, k, v):
        t.grad = None
    out = attention(q, k, v, is_causal=True)
    (out * out).sum().backward()
    return out.numpy(), [t.grad.numpy() for t in (q, k, v)]

fused, fused_grads = grads(F.scaled_dot_product_attention)
composite, composite_grads = grads(F.scaled_dot_product_attention_composite)
print("max |fused - composite| =", np.abs(fused - composite).max())
for name, a, b in zip("qkv", fused_grads, composite_grads):
    print(f"d{name}: max difference {np.abs(a - b).max():.2e}")
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)"""),
    ("md", """The fused backward against central finite differences in float64, first by hand
for one entry of q: (L(q + eps) - L(q - eps)) / (2 eps), then for every entry with
`minigrad.gradcheck`."""),
    ("code", """def loss_of(q, k, v):
    return (F.scaled_dot_product_attention(q, k, v, is_causal=True) ** 2).sum()

q64, k64, v64 = (mg.randn(1, 1, 3, 2, dtype="float64", generator=g, requires_grad=True)
                 for _ in range(3))
loss_of(q64, k64, v64).backward()
eps, index = 1e-6, (0, 0, 2, 1)
plus, minus = q64.numpy().copy(), q64.numpy().copy()
plus[index] += eps
minus[index] -= eps
numeric = (loss_of(mg.tensor(plus), k64, v64).item()
           - loss_of(mg.tensor(minus), k64, v64).item()) / (2 * eps)
print(f"dL/dq{list(index)}: backward {q64.grad.numpy()[index]:.8f}, numeric {numeric:.8f}")
assert abs(q64.grad.numpy()[index] - numeric) < 1e-6"""),
    ("code", """print(mg.gradcheck(loss_of, q64, k64, v64))"""),
    ("md", """## The causal mask

Query `i` may look at keys `0..i` only: the mask is lower triangular, and each row of the
attention weights sums to one over the visible keys."""),
    ("code", """import matplotlib.pyplot as plt

from minigrad.nn.functional.attention import causal_mask

cpu = mg.get_device("cpu")
mask = cpu.to_host(causal_mask(cpu, T, T))  # (T, T) bool, True = visible
scores = (q @ k.mT) * (1 / np.sqrt(D))
weights = F.softmax(mg.where(mg.tensor(mask), scores, -np.inf), axis=-1).numpy()[0, 0]

fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.5))
left.imshow(mask, cmap="Greys")
left.set(title="causal mask (query x key)", xlabel="key", ylabel="query")
right.imshow(weights, cmap="viridis")
right.set(title="attention weights, head 0", xlabel="key")
plt.show()
assert np.allclose(weights.sum(axis=-1), 1)"""),
]

GPT_MODEL = [
    ("md", """# 3. The GPT model

`gpt/model.py` is the whole model: token (and learned position) embeddings, `n_layer`
pre-norm blocks of causal self-attention and an MLP, a final norm and an output head tied
to the token embedding."""),
    ("code", """import minigrad as mg
from gpt.model import GPT, GPTConfig

config = GPTConfig(vocab_size=96, block_size=32, n_layer=2, n_head=4, n_embd=64)
model = GPT(config, generator=mg.Generator(0))
print(model)"""),
    ("md", "Shapes through the model: ids `(B, T)` in, logits `(B, T, vocab_size)` out."),
    ("code", """ids = mg.randint(0, config.vocab_size, (3, 16), generator=mg.Generator(1))
logits, loss = model(ids, targets=ids)
print("ids", ids.shape, "-> logits", logits.shape, "; loss", float(loss.item()))
assert logits.shape == (3, 16, config.vocab_size)"""),
    ("md", """## Parameters and FLOPs

Every parameter tensor, the total, and the non-embedding count N of the scaling laws.
Training costs about `6 (N + V C) + 12 n_layer n_embd T` FLOPs per token
(`GPT.flops_per_token`, PaLM's count)."""),
    ("code", """for name, p in model.named_parameters():
    print(f"{name:32s} {str(p.shape):14s} {p.numel():>8,}")
total, n = model.num_parameters(), model.num_parameters(non_embedding=True)
print(f"total {total:,}; non-embedding N = {n:,}")
c = config
by_hand = 6 * (n + c.vocab_size * c.n_embd) + 12 * c.n_layer * c.n_embd * c.block_size
print(f"FLOPs per token: {model.flops_per_token():,} (by hand {by_hand:,})")
assert model.flops_per_token() == by_hand"""),
]

PRETRAINING = [
    ("md", """# 4. Pretraining

A very short run of the command line's `train` on the built-in corpus (the interpreter's
documentation), with a tiny character-level model: the same code path as
`python -m gpt train`, only smaller. Then the loss curve from the run's `metrics.jsonl`,
and a sample."""),
    ("code", """import tempfile
from pathlib import Path

from gpt import cli
from gpt.runlog import read_metrics

runs = Path(tempfile.mkdtemp())
tiny = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "32",
        "--batch-size", "8", "--warmup", "5", "--eval-interval", "20", "--eval-batches", "2",
        "--log-interval", "5", "--max-new-tokens", "40", "--no-progress"]
code = cli.main(["train", "--out", str(runs), "--name", "tiny", "--steps", "60",
                 "--lr", "3e-3", *tiny])
assert code == 0
run = runs / "tiny"
print(sorted(p.name for p in run.iterdir()))"""),
    ("code", """import matplotlib.pyplot as plt

records = read_metrics(run / "metrics.jsonl")
train = [(r["step"], r["loss"]) for r in records if "loss" in r]
val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
plt.plot(*zip(*train), label="train")
plt.plot(*zip(*val), "o-", label="validation")
plt.xlabel("step")
plt.ylabel("loss (nats/token)")
plt.legend()
plt.show()
print("first / last train loss:", train[0][1], train[-1][1])
assert train[-1][1] < train[0][1]"""),
    ("md", "Sixty steps only learn letter frequencies, but it is the full pipeline:"),
    ("code", """assert cli.main(["sample", str(run), "--prompt", "The ", "--max-new-tokens", "60",
                 "--seed", "0"]) == 0"""),
]

INSIDE_BACKPROP = [
    ("md", """# 5. Inside backprop

The instruments of `minigrad`: the computation graph (`minigrad.viz.draw`), tensor and
module hooks, anomaly mode (the op that made the first NaN), the op profiler, and a
gradient-flow plot."""),
    ("code", """import shutil

from IPython.display import display

import minigrad as mg

x = mg.randn(3, 4, requires_grad=True, generator=mg.Generator(0))
w = mg.randn(4, 2, requires_grad=True, generator=mg.Generator(1))
loss = (x @ w).tanh().sum()
loss.backward()
graph = mg.viz.draw(loss, params={"x": x, "w": w}, show_grads=True)
if shutil.which("dot"):
    display(graph)  # drawn inline as SVG
else:
    print("Graphviz's `dot` is not installed; the graph as DOT text:")
    print(graph.source)"""),
    ("md", "A tensor hook sees (and may replace) a gradient; a module hook sees activations."),
    ("code", """from gpt.model import GPT, GPTConfig

seen = {}


def show_grad(g):  # returning None keeps the gradient; returning a Tensor replaces it
    seen["dL/dh"] = g.shape


h = x @ w
h.register_hook(show_grad)
h.tanh().sum().backward()
print(seen)

model = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32),
            generator=mg.Generator(0))
activations = {}


def record(module, inputs, output):  # None: the output passes unchanged
    activations[type(module).__name__ + f" {len(activations)}"] = output.shape


handles = [block.register_forward_hook(record) for block in model.h]
ids = mg.randint(0, 50, (2, 16), generator=mg.Generator(2))
_, loss = model(ids, targets=ids)
for handle in handles:
    handle.remove()
print(activations)"""),
    ("md", "Anomaly mode names the op that first produced a NaN or an infinity, and your line:"),
    ("code", """from minigrad.instruments.anomaly import AnomalyError

a = mg.tensor([1.0, 0.0, 2.0], requires_grad=True)
try:
    with mg.detect_anomaly():
        (a.log() * a).sum().backward()  # log(0) = -inf, made from a finite input
except AnomalyError as err:
    print(f"AnomalyError ({err.op}, {err.phase}):", err)
else:
    raise AssertionError("anomaly mode missed log(0)")"""),
    ("md", "The profiler times each op's forward and backward:"),
    ("code", """with mg.profile() as prof:
    _, loss = model(ids, targets=ids)
    loss.backward()
print(prof.table(limit=8))"""),
    ("md", "Gradient flow: mean and max |grad| of every parameter after one backward."),
    ("code", """import tempfile
from pathlib import Path

from IPython.display import Image, display

from minigrad.instruments.plots import gradient_flow

png = Path(tempfile.mkdtemp()) / "gradient_flow.png"
rows = gradient_flow(model, png)
display(Image(filename=str(png)))
print(len(rows), "parameters with a gradient")"""),
]

CPU_VS_GPU = [
    ("md", """# 6. CPU vs GPU

The same op on every device at hand: `cpu` (NumPy), `strict` (array-api-strict, the GPU
stand-in CI uses: it refuses implicit host transfers) and `cuda` (CuPy) when there is an
NVIDIA GPU. Tiny sizes here; `python -m benchmarks backends` is the real comparison."""),
    ("code", """import time

import minigrad as mg


def time_matmul(device, n=256, repeats=5):
    a = mg.randn(n, n, generator=mg.Generator(0)).to(device)  # same numbers everywhere
    b = mg.randn(n, n, generator=mg.Generator(1)).to(device)
    dev = mg.get_device(device)
    (a @ b).sum()  # warm-up
    dev.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        c = a @ b
    dev.synchronize()
    return (time.perf_counter() - start) / repeats, c


names = ["cpu", "strict"]
try:
    mg.get_device("cuda")
    names.append("cuda")
except RuntimeError as err:  # no CuPy, or no GPU
    print(f"cuda: not available here ({type(err).__name__}: {err})")
results = {}
for name in names:
    seconds, c = time_matmul(name)
    results[name] = c.to("cpu").numpy()
    print(f"{name:7s} 256x256 matmul: {seconds * 1e3:8.3f} ms")"""),
    ("code", """import numpy as np

for name in names[1:]:
    np.testing.assert_allclose(results[name], results["cpu"], rtol=1e-4, atol=1e-4)
print("same product on", ", ".join(names))"""),
]

PRETRAINED_AND_FINETUNING = [
    ("md", """# 7. Pretrained weights and fine-tuning

`gpt.pretrained.load_pretrained` reads a Hugging Face GPT-2 (or Llama) folder. To stay
offline and fast, `transformers` writes a tiny *randomly initialised* GPT-2 here, with a
small BPE tokenizer of ours as its `tokenizer.json`; a real checkpoint folder (e.g. GPT-2
small, downloaded once) loads the same way. Then a 10-step classification fine-tune
(`gpt.finetune.classify`, the book's chapter 6) on generated messages. Instruction tuning
and DPO (`gpt.finetune.instruct`, `gpt.finetune.dpo`) follow the same pattern; see the
README."""),
    ("code", """import tempfile
from pathlib import Path

import torch
import transformers

from bpe import Tokenizer
from bpe.corpus import builtin_corpus

folder = Path(tempfile.mkdtemp()) / "tiny-gpt2"
tokenizer = Tokenizer.train(builtin_corpus()[:20000], vocab_size=320)
torch.manual_seed(0)
hf_config = transformers.GPT2Config(vocab_size=tokenizer.vocab_size, n_positions=32,
                                    n_embd=32, n_layer=2, n_head=2,
                                    bos_token_id=0, eos_token_id=0)
hf_model = transformers.GPT2LMHeadModel(hf_config).eval()
hf_model.save_pretrained(folder, safe_serialization=True)
tokenizer.save_huggingface(folder / "tokenizer.json")
print(sorted(p.name for p in folder.iterdir()))"""),
    ("md", "Loaded into our GPT, it gives the logits `transformers` gives:"),
    ("code", """import numpy as np

import minigrad as mg
from gpt.pretrained import load_pretrained, load_pretrained_tokenizer

model = load_pretrained(folder)
tok = load_pretrained_tokenizer(folder)
ids = tok.encode("The return statement")
ours, _ = model(mg.tensor([ids]))
with torch.no_grad():
    theirs = hf_model(torch.tensor([ids])).logits.numpy()
print(model.config)
print("max |ours - transformers| =", np.abs(ours.numpy() - theirs).max())
assert np.allclose(ours.numpy(), theirs, atol=1e-4)"""),
    ("md", """## Classification fine-tuning

A class head on the last real token's features; generated "spam" and "ham" messages in a
TSV file (`label<TAB>text`); 10 steps with every weight trainable."""),
    ("code", """import random

from gpt.finetune.classify import (
    ClassifyOptions,
    classify_texts,
    finetune_classify,
    load_classifier,
)
from gpt.train import TrainConfig

rng = random.Random(0)
words = {"spam": ["win", "prize", "free", "cash", "claim", "now"],
         "ham": ["see", "you", "at", "dinner", "home", "later"]}
rows = [(label, " ".join(rng.choice(vocabulary) for _ in range(6)))
        for _ in range(60) for label, vocabulary in words.items()]
data = folder.parent / "messages.tsv"
data.write_text("".join(f"{label}\\t{text}\\n" for label, text in rows), encoding="utf-8")

run = folder.parent / "classify"
train = TrainConfig(steps=10, batch_size=8, lr=3e-3, warmup=1, eval_interval=5,
                    checkpoint_interval=0, log_interval=2, seed=0)
result = finetune_classify(run, data, folder, train, ClassifyOptions(trainable="all"),
                           progress=False)
assert result.status == "completed\""""),
    ("code", """classifier, run_tokenizer, labels = load_classifier(run)
for r in classify_texts(classifier, run_tokenizer, labels,
                        ["claim your free prize now", "see you at home later"]):
    print(f"{r['label']:5s} {r['probabilities'][r['label']]:.2f}  {r['text']}")"""),
]

NOTEBOOKS = {
    "01_tokenization.ipynb": TOKENIZATION,
    "02_attention.ipynb": ATTENTION,
    "03_gpt_model.ipynb": GPT_MODEL,
    "04_pretraining.ipynb": PRETRAINING,
    "05_inside_backprop.ipynb": INSIDE_BACKPROP,
    "06_cpu_vs_gpu.ipynb": CPU_VS_GPU,
    "07_pretrained_and_finetuning.ipynb": PRETRAINED_AND_FINETUNING,
}


def notebook(cells) -> dict:
    """An nbformat 4 notebook with no outputs and no execution counts."""
    def cell(kind, text):
        lines = text.splitlines(keepends=True)
        if kind == "md":
            return {"cell_type": "markdown", "metadata": {}, "source": lines}
        return {"cell_type": "code", "execution_count": None, "metadata": {},
                "outputs": [], "source": lines}
    return {
        "cells": [dict(cell(kind, text), id=f"cell-{i}") for i, (kind, text) in enumerate(cells)],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def notebook_text(cells) -> str:
    """The .ipynb file's text, as committed."""
    return json.dumps(notebook(cells), indent=1) + "\n"


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        write_text(HERE / name, notebook_text(cells))
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
