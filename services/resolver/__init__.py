"""Resolver: answers tickets with the tenant's own LoRA adapter (gRPC), bridges the ticket stream to
resolutions, and posts replies back to the tenant's helpdesk."""
