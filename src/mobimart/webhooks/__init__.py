"""Signed order and payment events delivered to merchants' own servers."""
