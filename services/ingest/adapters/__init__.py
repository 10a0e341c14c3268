"""Ingest's adapters: signature verification, the Kafka writer, the history files' readers."""
