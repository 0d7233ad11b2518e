"""Extraction stage: raw page to article."""
