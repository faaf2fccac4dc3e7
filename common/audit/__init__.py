"""Canaries for the empirical privacy audit (classification and reply canaries)."""
