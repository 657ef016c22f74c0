"""Speech models, VAD, streaming transcription and transcript formats."""
