"""Moderation: the sensitive-word filter, reports and the review queue."""
