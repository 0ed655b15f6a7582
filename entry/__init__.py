"""The process entry: the `ledger` command and what each of its subcommands starts.

The only package that may import every other one (`api`, `projections`, `replay_tools`,
`ledger`): it wires them into processes. Nothing imports it (docs/ARCHITECTURE.md).
"""
