"""`python -m gpt ...`: see gpt/cli.py."""

import sys

from gpt.cli import main

sys.exit(main())
