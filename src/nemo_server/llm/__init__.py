"""The Gemma/LLM service: GGUF models through llama.cpp behind an OpenAI-compatible API."""
