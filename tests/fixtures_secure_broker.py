"""Fixtures for a second broker with a SASL_SSL/SCRAM listener (filled in by the SASL work)."""
