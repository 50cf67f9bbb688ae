"""One entry point for the benchmarks: ``python -m benchmarks <name> [options]``.

Each ``benchmarks/bench_<name>.py`` module is a subcommand, its underscores written as
dashes (bench_gpt_speed -> ``gpt-speed``); the options after the name go to that
module's ``main(argv)``, whose return value is the exit status. They all time, print and
save through ``benchmarks/timing.py``. ``python -m benchmarks`` alone lists them with
their first docstring line; ``python -m benchmarks <name> --help`` shows a benchmark's
options.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).parent


def benchmarks() -> dict[str, Path]:
    """Subcommand name -> module file."""
    return {path.stem.removeprefix("bench_").replace("_", "-"): path
            for path in sorted(HERE.glob("bench_*.py"))}


def summary(path: Path) -> str:
    """The first line of a module's docstring (read without importing it)."""
    doc = ast.get_docstring(ast.parse(path.read_text()))
    return doc.splitlines()[0] if doc else ""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    known = benchmarks()
    if not argv or argv[0] in ("-h", "--help", "list"):
        print("usage: python -m benchmarks <name> [options]   (<name> --help for options)\n")
        for name, path in known.items():
            print(f"  {name:<14} {summary(path)}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in known:
        print(f"unknown benchmark {name!r}; one of: {', '.join(known)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"benchmarks.{known[name].stem}")
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
