"""Metering's entrypoints: the Kafka sink, the analytics API and dashboard, the embedded service."""
