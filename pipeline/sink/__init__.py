"""Sink stage: enriched articles into stores."""
