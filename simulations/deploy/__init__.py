"""Real deployment: SuperLink, SuperNodes, runs submitted to them."""
