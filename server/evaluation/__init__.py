"""The server's evaluation: held-out set every round, canary audit after the run."""
