"""Dedup stage: recognise copies of the same story."""
