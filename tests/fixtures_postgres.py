"""Fixtures for the local PostgreSQL server (filled in by the PostgreSQL work)."""
