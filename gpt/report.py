"""Why did it diverge: a report on the steps before a run stopped or rolled back, read
from its metrics.jsonl (`python -m gpt report RUN`; the trainer prints it too).

It shows the last steps' loss and gradient norm, and, for a run trained with
--layer-stats, each layer's gradient norm and update-to-weight ratio, each block's
largest activation, and the layer that moved first: the earliest, among those last
steps, whose gradient norm or update ratio rose more than `MOVE_Z` standard deviations
above its own running mean (the statistics of gpt.stability, fed with the whole run
before it). A layer that blows up first usually drags the others after it, so the
first mover is the suspect, not the largest number at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from gpt.layer_stats import STAT_NAMES
from gpt.stability import RunningStats
from minigrad.io import atomic

LAST_STEPS = 10
MOVE_Z = 6.0  # standard deviations above its running mean: a layer has moved
MOVE_WARMUP = 5  # values of a layer's history before it is judged
STOPS = ("rollback", "non_finite", "diverged")


@dataclass
class FirstMover:
    layer: str
    step: int
    stat: str  # "layer_grad_norm" or "layer_update_ratio"
    value: float
    z: float


@dataclass
class DivergenceReport:
    event: dict | None  # the rollback or stop the report explains; None: there was none
    history: list[dict]  # the step records up to it, in the order they were trained
    last: int = LAST_STEPS

    @property
    def steps(self) -> list[dict]:
        return self.history[-self.last:]

    @property
    def has_layers(self) -> bool:
        return bool(self.steps) and STAT_NAMES[0] in self.steps[-1]

    def first_mover(self) -> FirstMover | None:
        """The earliest of the last steps where some layer's grad norm or update ratio
        left its running range (the largest z-score breaks a tie); None if none did."""
        if not self.has_layers:
            return None
        start = len(self.history) - len(self.steps)
        stats: dict = {}
        for i, record in enumerate(self.history):
            movers = []
            for stat in STAT_NAMES[:2]:
                for layer, value in record.get(stat, {}).items():
                    running = stats.setdefault((stat, layer), RunningStats())
                    z = running.z_score(value)
                    if i >= start and running.count >= MOVE_WARMUP and z > MOVE_Z:
                        movers.append(FirstMover(layer, record["step"], stat, value, z))
                    if math.isfinite(value):
                        running.update(value)
            if movers:
                return max(movers, key=lambda m: m.z)
        return None

    def format(self) -> str:
        if self.event is None:
            lines = [f"no rollback or stop on record; the last {len(self.steps)} steps:"]
        else:
            lines = [f"{self.event['event']} at step {self.event['step']}: "
                     f"{self.event.get('message', '')}", f"the last {len(self.steps)} steps:"]
        peak = STAT_NAMES[2]
        lines.append(f"{'step':>7} {'loss':>10} {'grad norm':>10}"
                     + (f" {'max activation':>15}" if self.has_layers else ""))
        for r in self.steps:
            row = f"{r['step']:>7} {r['loss']:>10.4g} {r['grad_norm']:>10.4g}"
            if peak in r:
                row += f" {max(r[peak].values(), default=math.nan):>15.4g}"
            lines.append(row + ("  (update skipped)" if r.get("skipped") else ""))
        if not self.has_layers:
            lines.append("per-layer numbers were not recorded: train with --layer-stats")
            return "\n".join(lines)
        first = self.steps[0]
        finite = [r for r in self.steps if all(map(math.isfinite, r[STAT_NAMES[0]].values()))]
        final = finite[-1] if finite else self.steps[-1]
        norms = STAT_NAMES[0]
        width = max(len(layer) for layer in final[norms])
        then, now = f"step {first['step']}", f"step {final['step']}"
        lines.append(f"per layer, {then} and {now} (the last with finite numbers):")
        lines.append(f"  {'layer':<{width}} {'grad norm':>10} {'grad norm':>10} "
                     f"{'update/weight':>14}")
        lines.append(f"  {'':<{width}} {then:>10} {now:>10} {now:>14}")
        for layer, norm in final[norms].items():
            lines.append(f"  {layer:<{width}} {first[norms][layer]:>10.4g} {norm:>10.4g} "
                         f"{final[STAT_NAMES[1]][layer]:>14.4g}")
        lines.append("max activation per block: " + ", ".join(
            f"{block} {value:.4g}" for block, value in final[peak].items()))
        mover = self.first_mover()
        if mover is None:
            lines.append(f"no layer left its running range (z > {MOVE_Z:g}) in these steps")
        else:
            what = "gradient norm" if mover.stat == STAT_NAMES[0] else "update/weight ratio"
            lines.append(f"the layer that moved first: {mover.layer} (its {what} {mover.value:.4g}"
                         f" at step {mover.step}, {mover.z:.1f} standard deviations above its "
                         "running mean)")
        return "\n".join(lines)


def divergence_report(records: list[dict], last: int = LAST_STEPS) -> DivergenceReport:
    """The report on the run's latest rollback or stop (or on its last steps, if none)."""
    stops = [i for i, r in enumerate(records) if r.get("event") in STOPS]
    end = stops[-1] if stops else len(records)
    history = [r for r in records[:end] if "event" not in r and "loss" in r]
    return DivergenceReport(records[end] if stops else None, history, last)


def plot_report(report: DivergenceReport, path) -> Path | None:
    """Loss, then per-layer gradient norms, update ratios and per-block max activations
    over the report's steps (log scale), as a PNG; None without matplotlib or layers."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    steps = report.steps
    if not steps:
        return None
    panels = [("loss", None)] + ([(stat, stat) for stat in STAT_NAMES] if report.has_layers
                                 else [])
    fig = Figure(figsize=(8, 2.6 * len(panels)), dpi=100)
    FigureCanvasAgg(fig)
    x = list(range(len(steps)))  # training order (a rollback re-runs step numbers)
    for n, (title, stat) in enumerate(panels, start=1):
        ax = fig.add_subplot(len(panels), 1, n)
        series = ({"loss": [r["loss"] for r in steps]} if stat is None else
                  {name: [r[stat][name] for r in steps] for name in steps[-1][stat]})
        for name, values in series.items():
            ax.plot(x, values, lw=1, label=name)
        ax.set_yscale("log")
        ax.set_title(title.replace("_", " "), fontsize=9)
        ax.set_xticks(x, [str(r["step"]) for r in steps], fontsize=7)
        ax.grid(alpha=0.3)
        if stat is not None and len(series) <= 12:
            ax.legend(fontsize=6, ncol=2)
    fig.axes[-1].set_xlabel("step")
    fig.tight_layout()
    with atomic.atomic_write(path) as f:
        fig.savefig(f, format="png")
    return Path(path)
