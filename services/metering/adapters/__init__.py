"""Metering's adapters: protobuf codec, ClickHouse store and its migrations."""
