"""Metering: resolutions and their outcomes into ClickHouse, the resolution lifecycle, exactly-once
billing at the plan's unit price, and the tenant analytics API and dashboard."""
