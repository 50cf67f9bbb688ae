"""``python -m bpe``: the command line (see :mod:`bpe.cli`)."""

from .cli import main

raise SystemExit(main())
