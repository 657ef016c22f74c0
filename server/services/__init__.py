"""Application services: one function per use case, called by pages, API and CLI alike."""
