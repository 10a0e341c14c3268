"""PII scrubbing: what leaves ingest for training or inference carries typed placeholders instead of
e-mail addresses, phone numbers, payment card numbers, IBANs and street addresses.

Checks beyond the pattern keep false positives down: card numbers must pass the Luhn check, IBANs the
ISO 13616 mod-97 check, and phone numbers need 7-15 digits (so amounts and times stay as they are).
"""

from __future__ import annotations

import re

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CARD = "[CARD_NUMBER]"
IBAN = "[IBAN]"
ADDRESS = "[ADDRESS]"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<![\d$.,])(?:\d[ -]?){12,18}\d(?![\d])")
_PHONE = re.compile(
    r"(?<![\w$.,/])(?<!\d[ -])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]?\d{3,4}"
    r"(?![\w/])(?![ -]\d)"
    r"|(?<![\w$.,])\+\d{7,15}(?!\w)"
)
_STREET_SUFFIX = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
                  r"Terrace|Parkway|Pkwy|Square|Sq|Highway|Hwy|Circle|Cir)")
_ADDRESS = re.compile(
    r"\b\d{1,6}[A-Za-z]?\s+(?:[NSEW]\.?\s+)?(?:[A-Z][A-Za-z'.-]*\s+){0,4}" + _STREET_SUFFIX + r"\b\.?"
    r"(?:,?\s*(?:Apt|Suite|Unit|#)\.?\s*\w+)?"
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def _replace_cards(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return CARD if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group(0)


def _replace_ibans(match: re.Match) -> str:
    return IBAN if iban_valid(match.group(0)) else match.group(0)


def _replace_phones(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return PHONE if 7 <= len(digits) <= 15 else match.group(0)


def scrub(text: str) -> str:
    """`text` with detectable PII replaced by typed placeholders. Order matters: the most specific
    patterns (e-mail, IBAN, card) run before the looser phone and address patterns."""
    if not text:
        return text
    text = _EMAIL.sub(EMAIL, text)
    text = _IBAN.sub(_replace_ibans, text)
    text = _CARD.sub(_replace_cards, text)
    text = _PHONE.sub(_replace_phones, text)
    text = _ADDRESS.sub(ADDRESS, text)
    return text
