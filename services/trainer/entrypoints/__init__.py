"""Thin wiring: the Kafka worker and the preview command."""
