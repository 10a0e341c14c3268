"""The pure core of ingest: no I/O, plain data in, plain data (protobuf messages) out."""
