"""Nemo Server: a local-first AI platform (chat, transcription, memory, emotion, System 2 ML)."""

__version__ = "0.1.0"
