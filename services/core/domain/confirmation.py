"""Did the customer say the answer solved it? A conservative reading: a short message that thanks or
confirms, with nothing that says it is still broken or asks something new."""

from __future__ import annotations

import re

_POSITIVE = re.compile(
    r"\b(thanks?|thank you|thx|ty|cheers|that (?:worked|works|did it|helped|fixed it|solved it)|works now|"
    r"(?:it|that)(?:'s| is) (?:fixed|solved|resolved|working)|problem solved|all (?:good|set|sorted)|perfect|"
    r"great|awesome|got it|that'?s all|resolved)\b",
    re.IGNORECASE,
)
_NEGATIVE = re.compile(
    r"\b(not|no longer|still|doesn'?t|didn'?t|don'?t|isn'?t|won'?t|can'?t|cannot|never|but|however|"
    r"problem|issue|error|wrong|broken|fail\w*|help me)\b|\?",
    re.IGNORECASE,
)
MAX_WORDS = 25


def is_confirmation(text: str) -> bool:
    if not text or len(text.split()) > MAX_WORDS:
        return False
    cleaned = re.sub(r"\bno problem\b", "", text, flags=re.IGNORECASE)
    return bool(_POSITIVE.search(cleaned)) and not _NEGATIVE.search(cleaned)
