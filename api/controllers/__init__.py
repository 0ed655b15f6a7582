"""One controller module per resource; handlers are a few lines that call the ledger."""
