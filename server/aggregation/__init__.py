"""Aggregation: the strategy around Flower's aggregators, central DP, server momentum."""
