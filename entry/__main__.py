"""`python -m entry`: the `ledger` command."""

import sys

from entry.cli import main

sys.exit(main())
