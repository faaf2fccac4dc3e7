"""Seeded synthetic data with planted PII: messages, records, dialogues, per-node streams."""
