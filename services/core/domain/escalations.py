"""Why a resolution escalated, as a kind that counts together across tickets (the analytics API and the
demo's tables group by it)."""

from __future__ import annotations


def escalation_kind(reason: str) -> str:
    """An escalation reason without its figures ("confidence 0.41 under threshold 0.62" → "confidence
    under the threshold"), so that reasons can be counted together."""
    if reason.startswith("confidence"):
        return "confidence under the threshold"
    for words, kind in (("timed out", "action timed out"), ("not allowed", "action not allowed"),
                        ("no actions URL", "no back office"), ("malformed action", "malformed call"),
                        ("done, but the reply", "action done, no reply")):
        if words in reason:
            return kind
    if reason.startswith("action "):
        return "action failed"
    return reason or "no reply"
