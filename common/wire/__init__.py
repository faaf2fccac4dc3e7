"""What crosses the wire: message contents, canonical JSON, the sealed-update envelope."""
