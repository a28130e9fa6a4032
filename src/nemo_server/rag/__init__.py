"""RAG memory service: documents and transcripts as long-term memory, hybrid search, answers."""
