"""fedbank: client package."""
