"""Faust wiring: the app, its topics and the thin agents that move records between them."""
