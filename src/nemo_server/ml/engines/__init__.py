"""Engines of the ML service: each heavy library is imported lazily inside its module's functions."""
