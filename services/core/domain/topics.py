"""Kafka topic names: the one place they are spelled."""

from __future__ import annotations

from dataclasses import dataclass

HELPDESK_EVENTS = "helpdesk.events"
TICKETS_TO_RESOLVE = "tickets.to_resolve"
TRAINING_SAMPLES = "training.samples"
ADAPTERS_PUBLISHED = "adapters.published"
RESOLUTIONS = "resolutions"
RESOLUTION_OUTCOMES = "resolution.outcomes"
HELPDESK_OUTBOUND = "helpdesk.outbound"

MAIN_TOPICS: tuple[str, ...] = (
    HELPDESK_EVENTS,
    TICKETS_TO_RESOLVE,
    TRAINING_SAMPLES,
    ADAPTERS_PUBLISHED,
    RESOLUTIONS,
    RESOLUTION_OUTCOMES,
    HELPDESK_OUTBOUND,
)

DLQ_SUFFIX = ".dlq"


def dlq(topic: str) -> str:
    """The dead-letter topic of `topic`: where its poison messages go, with the reason in headers."""
    return topic + DLQ_SUFFIX


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int


def all_topic_specs(partitions: int) -> list[TopicSpec]:
    """Every topic the stack needs. Keyed by tenant:ticket, so per-ticket order holds on any count.

    `adapters.published` has one partition: every resolver replica reads every publication in order.
    Dead-letter topics are small, one partition each.
    """
    specs = [TopicSpec(t, 1 if t == ADAPTERS_PUBLISHED else partitions) for t in MAIN_TOPICS]
    specs += [TopicSpec(dlq(t), 1) for t in MAIN_TOPICS]
    return specs


def message_key(tenant_id: str, ticket_id: str) -> bytes:
    return f"{tenant_id}:{ticket_id}".encode()
