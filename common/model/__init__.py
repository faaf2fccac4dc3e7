"""The model: base and adapter build, adapter in/out, device, losses, metrics."""
