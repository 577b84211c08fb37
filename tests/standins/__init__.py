"""Local stand-ins for third-party services the server talks to (tests and benchmarks)."""
