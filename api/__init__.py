"""The HTTP API v1 (Litestar): authentication, controllers, problem documents, logs and metrics."""
