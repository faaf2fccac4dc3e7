"""fedbank: server package."""
