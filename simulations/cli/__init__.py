"""The fedbank command line (the one layer that imports server and client)."""
