"""Privacy at the branch: PII detection and desensitization of text and structured records."""
