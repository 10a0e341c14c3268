"""The resolver's use cases: answer a ticket with its tenant's current adapter (resolve.py), deliver a reply to its
helpdesk exactly once (delivery.py)."""
