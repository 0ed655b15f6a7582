"""The pharmacy points ledger: the domain, its policies, the infrastructure under them and the
services on top (no HTTP; its only SQL is the member-key table). docs/ARCHITECTURE.md."""
