"""The pharmacy points ledger: domain model and application service (no HTTP, no SQL)."""
