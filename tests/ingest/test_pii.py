import pytest

from clonedesk.ingest.domain.pii import iban_valid, luhn_valid, scrub


@pytest.mark.parametrize("text,expected", [
    ("write to jane.doe+orders@example.co.uk please", "write to [EMAIL] please"),
    ("call me on 415-555-1234", "call me on [PHONE]"),
    ("or +44 20 7946 0958 after six", "or [PHONE] after six"),
    ("office (212) 555 0199", "office [PHONE]"),
    ("card 4111 1111 1111 1111 expired", "card [CARD_NUMBER] expired"),
    ("card 4111-1111-1111-1111", "card [CARD_NUMBER]"),
    ("pay to DE89 3704 0044 0532 0130 00 today", "pay to [IBAN] today"),
    ("GB82WEST12345698765432", "[IBAN]"),
    ("ship to 221 Baker Street, Apt 4 please", "ship to [ADDRESS] please"),
    ("I live at 1600 Pennsylvania Avenue", "I live at [ADDRESS]"),
])
def test_pii_becomes_typed_placeholders(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize("text", [
    "Your checking account has $5,118.77.",
    "A table for 4 at 7:30 pm on 2019-03-05, please.",
    "Transfer $1,630 to Amir.",
    "Flight 1138 leaves at 10:45 from gate 12.",
    "not a card: 1234 5678 9012 3456",          # fails the Luhn check
    "not an IBAN: DE00 3704 0044 0532 0130 00",  # fails mod-97
])
def test_ordinary_text_is_left_alone(text):
    assert scrub(text) == text


def test_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")


def test_several_kinds_in_one_message():
    text = "I'm jo@x.io, 4111111111111111, ring +14155551234"
    assert scrub(text) == "I'm [EMAIL], [CARD_NUMBER], ring [PHONE]"
