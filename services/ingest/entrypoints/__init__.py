"""Ingest's entrypoints: the FastAPI gateway, the faust worker, the history import."""
