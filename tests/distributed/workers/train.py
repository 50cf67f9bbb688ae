"""Run under mpiexec:

    python train.py LAYOUT RUN_DIR [SHARDS] [stop=STEP] [resume] [llama] [die] [float32]

trains tests/distributed/tiny_run.py's run in parallel (rank 0 writes RUN_DIR); an error
on any rank aborts them all."""

import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tiny_run import run  # noqa: E402

from gpt.parallel import start  # noqa: E402

layout, run_dir, *options = sys.argv[1:]
shards = next((int(o) for o in options if o.isdigit()), None)
stop = next((int(o[5:]) for o in options if o.startswith("stop=")), None)
parallel = start(layout)
# die: rank 1 is killed (SIGKILL) as step 3 starts, the others train on.
die = "die" in options
with parallel.guard():
    result = run(run_dir, parallel, shards or parallel.layout.dp,
                 3 if die and parallel.world.rank == 1 else None if die else stop,
                 "resume" in options, "llama" in options,
                 signal.SIGKILL if die else signal.SIGINT,
                 "float32" if "float32" in options else "float64")
print(f"rank {parallel.world.rank}: {result.status} at step {result.step}", flush=True)
