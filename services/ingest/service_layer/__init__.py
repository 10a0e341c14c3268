"""Ingest's use cases: accepting a helpdesk's webhook (webhooks.py); the importer and the stream processor
are in entrypoints/."""
