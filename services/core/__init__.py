"""What every service shares: settings, topic names, Kafka helpers, telemetry, the tenant store, the base
model."""
