"""Tools that rebuild and question history from the event log (`ledger rebuild`, `verify`, ...)."""
