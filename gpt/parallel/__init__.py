"""Training one GPT on several processes: data, tensor and pipeline parallelism and
ZeRO-1 over `minigrad.distributed` communicators (`layout` says who does what,
`engine.Parallel` is what the Trainer calls, `data` shards the tokens, `checkpoint`
keeps one run folder in the single-process format)."""

from gpt.parallel.engine import Parallel
from gpt.parallel.layout import Layout

__all__ = ["Layout", "Parallel", "start"]


def start(spec: str, device: str = "cpu") -> Parallel | None:
    """The `Parallel` of this process for the layout `spec` ('dp=2,tp=1,pp=1'), after
    checking the launch: None for a one-process layout started without a launcher."""
    from minigrad.distributed import launched_size, world

    layout = Layout.parse(spec)
    size = launched_size()
    layout.check_world(size)
    if size is None:
        return None
    try:
        comm = world(device)
    except ImportError as exc:
        raise ValueError(f"--parallel: {exc}") from None
    return Parallel(layout, comm)
