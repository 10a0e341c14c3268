"""Signature verification against vectors computed here with hmac/hashlib, not with the code under test."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta, timezone

import pytest

from clonedesk.core.signatures import BadSignature, verify_intercom, verify_zendesk

SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3RpbmdfcHVycG9zZXNfb25seQ=="
BODY = b'{"type":"zen:event-type:ticket.created","id":"abc","detail":{"id":"35436"}}'
NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=timezone.utc)
STAMP = "2026-11-21T11:59:30Z"


def zendesk_vector(secret: str, stamp: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()).decode()


def intercom_vector(secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def test_a_fixed_zendesk_vector_verifies():
    # Computed outside Python: printf '%s%s' "$STAMP" "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64
    openssl_vector = "unWtRQGtNrVSdILKrEzpjVSDT9ha4zjg5ABQD4hi3dM="
    assert zendesk_vector(SECRET, STAMP, BODY) == openssl_vector
    verify_zendesk(SECRET, openssl_vector, STAMP, BODY, now=NOW)


def test_zendesk_wrong_secret_is_refused():
    with pytest.raises(BadSignature, match="does not match"):
        verify_zendesk(SECRET, zendesk_vector("another-secret", STAMP, BODY), STAMP, BODY, now=NOW)


def test_zendesk_body_changed_by_one_byte_is_refused():
    changed = BODY.replace(b"35436", b"35437")
    assert len(changed) == len(BODY)
    with pytest.raises(BadSignature, match="does not match"):
        verify_zendesk(SECRET, zendesk_vector(SECRET, STAMP, BODY), STAMP, changed, now=NOW)


def test_zendesk_stale_timestamp_is_refused_even_with_a_valid_signature():
    stale = (NOW - timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(BadSignature, match="window"):
        verify_zendesk(SECRET, zendesk_vector(SECRET, stale, BODY), stale, BODY, now=NOW)


def test_zendesk_timestamp_inside_the_tolerance_passes_and_the_tolerance_is_configurable():
    four_minutes_ago = (NOW - timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    verify_zendesk(SECRET, zendesk_vector(SECRET, four_minutes_ago, BODY), four_minutes_ago, BODY, now=NOW)
    with pytest.raises(BadSignature):
        verify_zendesk(SECRET, zendesk_vector(SECRET, four_minutes_ago, BODY), four_minutes_ago, BODY, now=NOW,
                       tolerance_s=60)


def test_zendesk_signed_timestamp_cannot_be_swapped():
    other = "2026-11-21T11:59:40Z"
    with pytest.raises(BadSignature, match="does not match"):
        verify_zendesk(SECRET, zendesk_vector(SECRET, STAMP, BODY), other, BODY, now=NOW)


@pytest.mark.parametrize("signature,stamp", [(None, STAMP), ("", STAMP), ("x", None), ("x", "yesterday")])
def test_zendesk_missing_or_unreadable_headers_are_refused(signature, stamp):
    with pytest.raises(BadSignature):
        verify_zendesk(SECRET, signature, stamp, BODY, now=NOW)


def test_intercom_vector_verifies_and_tampering_fails():
    body = b'{"type":"notification_event","topic":"conversation.user.created"}'
    verify_intercom(SECRET, intercom_vector(SECRET, body), body)
    with pytest.raises(BadSignature):
        verify_intercom(SECRET, intercom_vector("wrong", body), body)
    with pytest.raises(BadSignature):
        verify_intercom(SECRET, intercom_vector(SECRET, body), body.replace(b"created", b"creates"))
    with pytest.raises(BadSignature):
        verify_intercom(SECRET, intercom_vector(SECRET, body).replace("sha1=", "sha256="), body)
    with pytest.raises(BadSignature):
        verify_intercom(SECRET, None, body)


def test_known_answer_vectors():
    """RFC 2202 / RFC 4231 test case 2 (key "Jefe"): the primitives are the standard ones."""
    data = b"what do ya want for nothing?"
    assert intercom_vector("Jefe", data) == "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    verify_intercom("Jefe", "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79", data)
    expected = base64.b64encode(bytes.fromhex(
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")).decode()
    assert zendesk_vector("Jefe", "what do ya want ", b"for nothing?") == expected
