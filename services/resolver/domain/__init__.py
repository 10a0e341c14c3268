"""The resolver's pure core: request rules, decisions, escalation, ids, outbound retry policy (no I/O)."""
