"""Ingest: signed helpdesk webhooks and history import into Kafka; conversation state, training samples,
resolve requests and resolution outcomes in a faust worker."""
