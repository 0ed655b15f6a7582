"""`python -m ledger`: the `ledger` command.

The command is wired above the domain, in the `entry` package (which imports the API and the
projections); this file only hands over to it by name, so no import points up from `ledger`.
"""

import runpy

runpy.run_module("entry", run_name="__main__", alter_sys=True)
