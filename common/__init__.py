"""fedbank: common package."""
