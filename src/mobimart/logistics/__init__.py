"""Shipments and tracking."""
