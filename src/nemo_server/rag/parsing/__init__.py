"""Turning uploads into structured blocks: detection, text formats, sandboxed PDF/DOCX."""
