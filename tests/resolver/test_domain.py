"""The resolver's pure core: request rules, ids, decisions and escalation, publication order, eviction,
and the helpdesk post / retry policy."""

from __future__ import annotations

import base64
import math
from pathlib import PurePosixPath

import pytest
from clonedesk.core.tenants import HelpdeskAccess
from clonedesk.resolver.domain.lora_adapters import (
    AdapterRankTooHigh,
    ResidentAdapter,
    check_lora_rank,
    eviction_candidates,
    lora_rank,
    publication_applies,
    publication_path_inside,
)
from clonedesk.resolver.domain.decisions import decide, sequence_confidence
from clonedesk.resolver.domain.outbound import (
    helpdesk_lookup,
    public_replies,
    reached_helpdesk,
    AI_AUTHOR_ID,
    NotDeliverable,
    backoff_delay,
    delivery_key,
    helpdesk_request,
    is_retryable,
)
from clonedesk.core.domain.ids import reply_id
from clonedesk.resolver.domain.requests import (
    InvalidRequest,
    idempotency_key,
    resolution_id,
    validate_request,
)
from clonedesk.v1 import common_pb2, outbound_pb2, resolver_pb2


def request(**fields):
    values = dict(
        tenant_id="acme",
        ticket_id="42",
        conversation=[common_pb2.Turn(role=common_pb2.CUSTOMER, text="Where is my order?")],
    )
    values.update(fields)
    return resolver_pb2.ResolveRequest(**values)


class TestRequests:
    def test_a_complete_request_is_valid(self):
        validate_request(request())

    @pytest.mark.parametrize(
        "fields, words",
        [
            (dict(tenant_id=""), "tenant_id"),
            (dict(tenant_id="Bad Tenant"), "tenant_id"),
            (dict(ticket_id=""), "ticket_id"),
            (dict(ticket_id="x" * 201), "ticket_id"),
            (dict(conversation=[]), "empty"),
            (dict(conversation=[common_pb2.Turn(role=common_pb2.AGENT, text="Hello")]), "no customer text"),
            (dict(conversation=[common_pb2.Turn(role=common_pb2.CUSTOMER, text="   ")]), "no customer text"),
            (dict(conversation=[common_pb2.Turn(text="no role")]), "no role"),
            (dict(conversation=[common_pb2.Turn(role=common_pb2.CUSTOMER, text="x" * 20_001)]), "longer"),
            (dict(conversation=[common_pb2.Turn(role=common_pb2.CUSTOMER, text="hi")] * 201), "turns"),
        ],
    )
    def test_malformed_requests_are_refused_with_a_reason(self, fields, words):
        with pytest.raises(InvalidRequest, match=words):
            validate_request(request(**fields))

    def test_resolution_id_is_stable_per_tenant_and_request_id(self):
        first = resolution_id("acme", idempotency_key(request(request_id="r-1")))
        assert first == resolution_id("acme", idempotency_key(request(request_id="r-1", ticket_id="other")))
        assert first != resolution_id("acme", idempotency_key(request(request_id="r-2")))
        assert first != resolution_id("globex", idempotency_key(request(request_id="r-1")))

    def test_without_a_request_id_the_conversation_is_the_key(self):
        one, same = idempotency_key(request()), idempotency_key(request())
        longer = idempotency_key(
            request(
                conversation=list(request().conversation)
                + [common_pb2.Turn(role=common_pb2.CUSTOMER, text="Any news?")]
            )
        )
        assert one == same and one != longer


class TestDecisions:
    def test_the_answer_confidence_is_the_calibrated_header_probability(self):
        from clonedesk.resolver.domain.decisions import answer_confidence

        # no constrained header: the sequence's confidence, as before
        assert answer_confidence(None, [math.log(0.5)], {"slope": 1.0, "bias": 0.0}) == pytest.approx(0.5)
        # the header's own probability when the adapter has no calibration
        assert answer_confidence(math.log(0.8), [math.log(0.1)] * 5, None) == pytest.approx(0.8)
        # calibrated: an over-confident adapter's 0.99 means less
        calibrated = answer_confidence(math.log(0.99), [], {"slope": 0.3, "bias": 0.0})
        assert 0.5 < calibrated < 0.99

    def test_confidence_is_the_geometric_mean_token_probability(self):
        assert sequence_confidence([math.log(0.5), math.log(0.5)]) == pytest.approx(0.5)
        assert sequence_confidence([math.log(1.0), math.log(0.25)]) == pytest.approx(0.5)
        assert sequence_confidence([]) == 0.0
        assert sequence_confidence([float("-inf"), 0.0]) == pytest.approx(1.0)

    def test_a_confident_answer_is_sent(self):
        decided = decide("[decision=ACTION action=Refund(order=7)]\nRefund issued.", 0.9, 0.5)
        assert (decided.decision, decided.action, decided.reply, decided.escalated) == (
            common_pb2.ACTION,
            "Refund(order=7)",
            "Refund issued.",
            False,
        )

    def test_low_confidence_escalates_without_a_reply(self):
        decided = decide("[decision=RESOLVE]\nAll done.", 0.49, 0.5)
        assert decided.decision == common_pb2.ESCALATE and decided.reply == "" and decided.escalated
        assert "threshold" in decided.reason

    def test_the_models_own_escalation_carries_no_reply(self):
        decided = decide("[decision=ESCALATE]\nA colleague will help.", 0.99, 0.5)
        assert decided.decision == common_pb2.ESCALATE and decided.reply == ""
        assert decided.reason == "model escalated"

    @pytest.mark.parametrize("text", ["no header at all", "[decision=MAYBE]\nhm", "[decision=RESOLVE]\n   "])
    def test_unreadable_or_empty_output_escalates(self, text):
        decided = decide(text, 0.99, 0.5)
        assert decided.escalated and decided.reply == ""


class TestPublicationsAndEviction:
    def test_only_the_registrys_current_version_applies(self):
        assert publication_applies(None, 1, 1)
        assert publication_applies(1, 2, 2)
        assert not publication_applies(2, 2, 2)
        assert not publication_applies(3, 2, 3)  # an old publication replayed
        assert not publication_applies(None, 1, None)  # the registry has no current version at all

    def test_a_rollback_applies_when_the_registry_points_at_it(self):
        assert publication_applies(3, 2, 2)

    def test_a_replayed_publication_cannot_undo_a_rollback(self):
        # v2 was published, then the operator rolled `current` back to v1; a restart replays v2.
        assert not publication_applies(1, 2, 1)
        assert not publication_applies(None, 2, 1)

    def test_a_publication_path_must_lie_inside_the_tenants_registry(self):
        tenant_dir = PurePosixPath("/data/adapters/acme")
        assert publication_path_inside(PurePosixPath("/data/adapters/acme/v2"), tenant_dir)
        assert not publication_path_inside(PurePosixPath("/data/adapters/globex/v2"), tenant_dir)
        assert not publication_path_inside(PurePosixPath("/data/adapters/acme-evil/v2"), tenant_dir)
        assert not publication_path_inside(tenant_dir, tenant_dir)
        assert not publication_path_inside(PurePosixPath("/elsewhere"), tenant_dir)

    def test_eviction_prefers_idle_superseded_then_least_recently_used(self):
        resident = [
            ResidentAdapter("a@v1", "a", 1, 0, 5.0),
            ResidentAdapter("a@v2", "a", 2, 0, 1.0),
            ResidentAdapter("b@v1", "b", 1, 0, 2.0),
            ResidentAdapter("c@v1", "c", 1, 3, 0.0),
        ]
        current = {"a": 2, "b": 1, "c": 1}
        assert eviction_candidates(resident, current, capacity=3) == ["a@v1"]
        assert eviction_candidates(resident, current, capacity=2) == ["a@v1", "a@v2"]
        # c@v1 has requests in flight and b@v1 is about to be used: neither is ever chosen.
        assert eviction_candidates(resident, current, capacity=0, keep="b@v1") == ["a@v1", "a@v2"]
        assert eviction_candidates(resident, current, capacity=4) == []


class TestLoraRank:
    def test_the_rank_is_r_or_the_largest_in_the_rank_pattern(self):
        assert lora_rank({"r": 32, "lora_alpha": 64}) == 32
        assert lora_rank({"r": 8, "rank_pattern": {"q_proj": 64}}) == 64
        with pytest.raises(ValueError):
            lora_rank({"lora_alpha": 16})

    def test_an_adapter_above_the_engines_limit_is_refused_naming_the_setting(self):
        check_lora_rank("acme@v3", 32, 64)
        check_lora_rank("acme@v3", 64, 64)
        check_lora_rank("acme@v3", 256, None)  # an engine without a limit (hf)
        with pytest.raises(AdapterRankTooHigh, match="CLONEDESK_MAX_LORA_RANK") as refused:
            check_lora_rank("acme@v3", 32, 16)
        assert "acme@v3" in str(refused.value) and "32" in str(refused.value)

    def test_the_default_limit_serves_the_trainers_default_rank(self, monkeypatch):
        from clonedesk.resolver.settings import ResolverSettings
        from clonedesk.trainer.settings import TrainerSettings

        monkeypatch.delenv("CLONEDESK_MAX_LORA_RANK", raising=False)
        monkeypatch.delenv("CLONEDESK_TRAINER_LORA_RANK", raising=False)
        limit = ResolverSettings().max_lora_rank
        assert limit == 64 and TrainerSettings().lora_rank <= limit


class TestOutboundPolicy:
    def reply(self, **fields):
        values = dict(
            reply_id="r1",
            resolution_id="res-1",
            tenant_id="acme",
            ticket_id="901",
            source=common_pb2.ZENDESK,
            body="Your refund is on its way.",
        )
        values.update(fields)
        return outbound_pb2.OutboundReply(**values)

    def test_zendesk_gets_a_public_comment_with_token_auth(self):
        access = HelpdeskAccess(
            zendesk_base_url="https://acme.zendesk.com/", zendesk_email="bot@acme.test", zendesk_token="tok"
        )
        post = helpdesk_request(self.reply(), access, "http://sim")
        assert (post.method, post.url) == ("PUT", "https://acme.zendesk.com/api/v2/tickets/901.json")
        assert post.json["ticket"]["comment"] == {
            "body": "Your refund is on its way.",
            "public": True,
            "author_id": AI_AUTHOR_ID,
        }
        assert base64.b64decode(post.headers["Authorization"].split()[1]) == b"bot@acme.test/token:tok"
        assert post.headers["Idempotency-Key"] == "r1"

    def test_intercom_gets_an_admin_reply_with_a_bearer_token(self):
        access = HelpdeskAccess(intercom_base_url="https://api.intercom.io", intercom_token="itok")
        post = helpdesk_request(self.reply(source=common_pb2.INTERCOM), access, "http://sim")
        assert (post.method, post.url) == ("POST", "https://api.intercom.io/conversations/901/reply")
        assert post.json == {
            "message_type": "comment",
            "type": "admin",
            "admin_id": AI_AUTHOR_ID,
            "body": "Your refund is on its way.",
        }
        assert post.headers["Authorization"] == "Bearer itok"

    def test_unconfigured_tenants_post_to_the_fallback_and_unknown_sources_pick_the_configured_api(self):
        assert (
            helpdesk_request(self.reply(), HelpdeskAccess(), "http://sim:1").url
            == "http://sim:1/api/v2/tickets/901.json"
        )
        intercom_only = HelpdeskAccess(intercom_base_url="https://api.intercom.io")
        assert (
            "/conversations/901/reply"
            in helpdesk_request(self.reply(source=common_pb2.IMPORT), intercom_only, "http://sim").url
        )

    def test_undeliverable_replies_are_refused(self):
        with pytest.raises(NotDeliverable):
            helpdesk_request(self.reply(ticket_id="../admin"), HelpdeskAccess(), "http://sim")
        with pytest.raises(NotDeliverable):
            helpdesk_request(self.reply(), HelpdeskAccess(), "")

    def test_retry_only_what_may_pass_later(self):
        assert all(is_retryable(s) for s in (None, 408, 429, 500, 502, 503))
        assert not any(is_retryable(s) for s in (400, 401, 403, 404, 422))

    def test_backoff_doubles_caps_and_respects_retry_after(self):
        assert [backoff_delay(a, 0.5, 3.0) for a in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
        assert backoff_delay(1, 0.5, 3.0, retry_after_s=2.0) == 2.0
        assert backoff_delay(1, 0.5, 3.0, retry_after_s=60.0) == 3.0

    def test_reply_ids_are_one_per_resolution(self):
        assert reply_id("res-1") == reply_id("res-1") != reply_id("res-2")

    def test_the_delivery_key_is_the_reply_id_and_never_shared_by_id_less_replies(self):
        assert delivery_key(self.reply()) == "r1"
        assert delivery_key(self.reply(reply_id="")) == reply_id("res-1")
        with pytest.raises(NotDeliverable):
            delivery_key(self.reply(reply_id="", resolution_id=""))


def test_a_cut_off_attempt_is_looked_up_where_each_helpdesk_lists_a_tickets_replies():
    access = HelpdeskAccess(zendesk_base_url="https://acme.zendesk.com", zendesk_email="bot@acme.com",
                            zendesk_token="t0k", intercom_base_url="https://api.intercom.io", intercom_token="ic")
    zendesk = outbound_pb2.OutboundReply(reply_id="r-1", tenant_id="acme", ticket_id="42",
                                         source=common_pb2.ZENDESK, body="Done.")
    source, lookup = helpdesk_lookup(zendesk, access, "http://sim")
    assert source == common_pb2.ZENDESK and lookup.method == "GET"
    assert lookup.url.startswith("https://acme.zendesk.com/api/v2/tickets/42/comments.json?sort_order=desc")
    assert lookup.headers["Authorization"].startswith("Basic ")
    intercom = outbound_pb2.OutboundReply(reply_id="r-2", tenant_id="acme", ticket_id="c-7",
                                          source=common_pb2.INTERCOM, body="Done.")
    source, lookup = helpdesk_lookup(intercom, access, "http://sim")
    assert (source, lookup.url) == (common_pb2.INTERCOM, "https://api.intercom.io/conversations/c-7")
    assert lookup.headers["Authorization"] == "Bearer ic"


def test_replies_on_the_helpdesk_are_counted_against_our_own_record_of_the_same_words():
    zendesk = {"comments": [{"body": "Hi", "public": True}, {"body": "Done.", "public": True},
                            {"body": "Done.", "public": False}]}
    assert public_replies(common_pb2.ZENDESK, zendesk) == ["Hi", "Done."]  # private notes are not replies
    intercom = {"conversation_parts": {"conversation_parts": [
        {"part_type": "comment", "body": "Done.", "author": {"type": "admin"}},
        {"part_type": "comment", "body": "Done.", "author": {"type": "user"}},  # the customer's words
        {"part_type": "note", "body": "Done.", "author": {"type": "admin"}},
        {"part_type": "assignment", "body": None, "author": {"type": "bot"}}]}}
    assert public_replies(common_pb2.INTERCOM, intercom) == ["Done."]
    assert reached_helpdesk("Done.", ["Hi", "Done."], recorded_with_same_body=0)
    assert not reached_helpdesk("Done.", ["Hi", "Done."], recorded_with_same_body=1)  # that one was ours
    assert reached_helpdesk("Done.", ["Done.", "Done."], recorded_with_same_body=1)
    assert not reached_helpdesk("Done.", [], recorded_with_same_body=0)


def test_the_look_up_follows_zendesks_next_page_only_on_the_same_endpoint():
    from clonedesk.resolver.domain.outbound import next_lookup_page

    asked = "https://acme.zendesk.com/api/v2/tickets/7/comments.json?sort_order=desc&per_page=100"
    following = "https://acme.zendesk.com/api/v2/tickets/7/comments.json?page=2&per_page=100&sort_order=desc"
    assert next_lookup_page(common_pb2.ZENDESK, {"next_page": following}, asked) == following
    assert next_lookup_page(common_pb2.ZENDESK, {"next_page": None}, asked) is None
    assert next_lookup_page(common_pb2.INTERCOM, {"next_page": following}, asked) is None
    for elsewhere in ("https://evil.example/api/v2/tickets/7/comments.json?page=2",
                      "http://acme.zendesk.com/api/v2/tickets/7/comments.json?page=2",
                      "https://acme.zendesk.com/api/v2/tickets/8/comments.json?page=2"):
        with pytest.raises(ValueError):  # the credentials go with the request: never to another place
            next_lookup_page(common_pb2.ZENDESK, {"next_page": elsewhere}, asked)
