"""Emotion service: emotion and sentiment of text and of speech."""
