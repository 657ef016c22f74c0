"""The live rooms of sessions: signalling events, presence, guests, ICE servers."""
