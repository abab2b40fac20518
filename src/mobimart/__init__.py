"""Mobimart: mobile-first commerce and interactive marketing."""

__version__ = "0.1.0"
