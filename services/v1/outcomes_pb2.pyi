import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResolutionOutcome(_message.Message):
    __slots__ = ("event_id", "resolution_id", "tenant_id", "ticket_id", "kind", "csat_score", "occurred_at", "category")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[ResolutionOutcome.Kind]
        CUSTOMER_CONFIRMED: _ClassVar[ResolutionOutcome.Kind]
        CUSTOMER_REPLIED: _ClassVar[ResolutionOutcome.Kind]
        HUMAN_TOOK_OVER: _ClassVar[ResolutionOutcome.Kind]
        SOLVED: _ClassVar[ResolutionOutcome.Kind]
        REOPENED: _ClassVar[ResolutionOutcome.Kind]
        CSAT: _ClassVar[ResolutionOutcome.Kind]
    KIND_UNSPECIFIED: ResolutionOutcome.Kind
    CUSTOMER_CONFIRMED: ResolutionOutcome.Kind
    CUSTOMER_REPLIED: ResolutionOutcome.Kind
    HUMAN_TOOK_OVER: ResolutionOutcome.Kind
    SOLVED: ResolutionOutcome.Kind
    REOPENED: ResolutionOutcome.Kind
    CSAT: ResolutionOutcome.Kind
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CSAT_SCORE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    resolution_id: str
    tenant_id: str
    ticket_id: str
    kind: ResolutionOutcome.Kind
    csat_score: int
    occurred_at: _timestamp_pb2.Timestamp
    category: str
    def __init__(self, event_id: _Optional[str] = ..., resolution_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., ticket_id: _Optional[str] = ..., kind: _Optional[_Union[ResolutionOutcome.Kind, str]] = ..., csat_score: _Optional[int] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., category: _Optional[str] = ...) -> None: ...
