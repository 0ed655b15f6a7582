"""The domain: one module per aggregate (its events, its state, its `evolve` and its pure
decisions), the commands callers send, the errors they may meet, and the base types."""
