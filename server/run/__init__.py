"""The server's run: the round loops (normal and SecAgg+)."""
