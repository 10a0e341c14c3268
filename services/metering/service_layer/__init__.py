"""The metering use cases: each takes the store (and the terms) it works with as arguments."""
