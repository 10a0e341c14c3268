"""Thin wiring: the gRPC server, the stream bridge, the outbound poster and the helpdesk simulator."""
