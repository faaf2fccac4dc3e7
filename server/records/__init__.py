"""What the server records: privacy ledger, checkpoint, metrics.json, its keys."""
