"""Generated from protos/clonedesk/v1 by `make protos`; do not edit."""
