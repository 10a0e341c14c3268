"""Kafka records as ClickHouse reads them: the sink hands a batch's record values to ClickHouse as they
came (its `Protobuf` input format, each message after its length), and ClickHouse decodes them, in C++
and off the Python interpreter's lock; adapters/staged_sql.py turns the staged fields into rows.

The schema ClickHouse decodes with is derived from the generated descriptors, wire-compatible with the
topic's message (same field numbers and wire types), with two changes that let it stage anything the
Python codec would judge (adapters/codec.py):
- strings are `bytes` and enums `int32`, so a bad UTF-8 string or an unknown enum value still stages
  and is judged in SQL, as the Python decoding judges it;
- two fields the topic's messages never carry are appended to each record: the stager (the sink
  process's random id) and the record's sequence number, so a batch's rows are found again and a
  rejected row points back at its record (a later field of a message is merged into it on decoding).
"""

from __future__ import annotations

import secrets

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from clonedesk.v1 import outcomes_pb2, resolver_pb2

# Far above any field number our messages use (the largest protobuf allows is 2**29 - 1).
STAGER_FIELD, SEQ_FIELD = 536_870_001, 536_870_002
RESOLUTION_MESSAGE, OUTCOME_MESSAGE = "StagedResolution", "StagedOutcome"

_SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: "double", FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_INT64: "int64", FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_INT32: "int32", FieldDescriptor.TYPE_FIXED64: "fixed64",
    FieldDescriptor.TYPE_FIXED32: "fixed32", FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_STRING: "bytes", FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_UINT32: "uint32", FieldDescriptor.TYPE_ENUM: "int32",
    FieldDescriptor.TYPE_SFIXED32: "sfixed32", FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    FieldDescriptor.TYPE_SINT32: "sint32", FieldDescriptor.TYPE_SINT64: "sint64",
}


def _message_text(descriptor: Descriptor, name: str, extra: str, out: dict[str, str]) -> None:
    """`message name {...}` for a descriptor, its message fields' types added to `out` first."""
    fields = []
    for field in sorted(descriptor.fields, key=lambda f: f.number):
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            nested = field.message_type.full_name.replace(".", "_")
            if nested not in out:
                _message_text(field.message_type, nested, "", out)
            type_name = nested
        elif field.type == FieldDescriptor.TYPE_GROUP:
            raise ValueError(f"{descriptor.full_name}.{field.name}: groups cannot be staged")
        else:
            type_name = _SCALARS[field.type]
        repeated = "repeated " if field.is_repeated else ""
        fields.append(f"  {repeated}{type_name} {field.name} = {field.number};")
    out[name] = "message " + name + " {\n" + "\n".join(fields) + extra + "\n}"


def staging_schema(descriptor: Descriptor, name: str) -> str:
    """The .proto text ClickHouse decodes `descriptor`'s records with, as message `name`."""
    messages: dict[str, str] = {}
    _message_text(descriptor, name, f"\n  uint64 staged_by = {STAGER_FIELD};\n  uint64 staged_seq = {SEQ_FIELD};",
                  messages)
    return 'syntax = "proto3";\n\n' + "\n\n".join(messages.values()) + "\n"


RESOLUTION_SCHEMA = staging_schema(resolver_pb2.Resolution.DESCRIPTOR, RESOLUTION_MESSAGE)
OUTCOME_SCHEMA = staging_schema(outcomes_pb2.ResolutionOutcome.DESCRIPTOR, OUTCOME_MESSAGE)


def format_settings(schema: str, message: str) -> dict[str, str]:
    """The insert settings that make ClickHouse decode with `schema` (no schema file on the server)."""
    return {"format_schema_source": "string", "format_schema": schema, "format_schema_message_name": message}


def varint(n: int) -> bytes:
    """A protobuf base-128 varint (n >= 0)."""
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_STAGER_TAG, _SEQ_TAG = varint(STAGER_FIELD << 3), varint(SEQ_FIELD << 3)  # wire type 0: varint


def new_stager() -> int:
    """A sink process's id on its staged rows: random, so replicas sharing a server never mix theirs."""
    return secrets.randbits(63)


class Framer:
    """Appends records to a staging insert's body: each record's length, the record, then the stager
    and its sequence number (fields STAGER_FIELD and SEQ_FIELD, which the decoding merges into it)."""

    def __init__(self, stager: int):
        self._stager = _STAGER_TAG + varint(stager)

    def add(self, parts: list, value: bytes, seq: int) -> None:
        tail = self._stager + _SEQ_TAG + varint(seq)
        parts.append(varint(len(value) + len(tail)))
        parts.append(value)
        parts.append(tail)
