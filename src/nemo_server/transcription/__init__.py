"""Transcription service: ASR with word timestamps and VAD, diarization, durable jobs, live streams."""
