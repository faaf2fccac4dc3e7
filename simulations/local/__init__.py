"""Simulation on one machine: the runner over Flower's simulation engine, and preflight checks."""
