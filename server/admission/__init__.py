"""Admission of branch replies: claims, envelope, update checks."""
