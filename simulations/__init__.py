"""fedbank: simulations package."""
