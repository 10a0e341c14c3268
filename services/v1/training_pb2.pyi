import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from clonedesk.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrainingSample(_message.Message):
    __slots__ = ("sample_id", "tenant_id", "ticket_id", "context", "reply", "decision", "action", "category", "turn_index", "occurred_at", "action_result")
    SAMPLE_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    TURN_INDEX_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    sample_id: str
    tenant_id: str
    ticket_id: str
    context: _containers.RepeatedCompositeFieldContainer[_common_pb2.Turn]
    reply: str
    decision: _common_pb2.Decision
    action: str
    category: str
    turn_index: int
    occurred_at: _timestamp_pb2.Timestamp
    action_result: str
    def __init__(self, sample_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., ticket_id: _Optional[str] = ..., context: _Optional[_Iterable[_Union[_common_pb2.Turn, _Mapping]]] = ..., reply: _Optional[str] = ..., decision: _Optional[_Union[_common_pb2.Decision, str]] = ..., action: _Optional[str] = ..., category: _Optional[str] = ..., turn_index: _Optional[int] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., action_result: _Optional[str] = ...) -> None: ...
