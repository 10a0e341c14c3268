import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from clonedesk.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResolveRequest(_message.Message):
    __slots__ = ("tenant_id", "ticket_id", "conversation", "request_id", "category", "source", "requested_at")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    ticket_id: str
    conversation: _containers.RepeatedCompositeFieldContainer[_common_pb2.Turn]
    request_id: str
    category: str
    source: _common_pb2.Source
    requested_at: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., ticket_id: _Optional[str] = ..., conversation: _Optional[_Iterable[_Union[_common_pb2.Turn, _Mapping]]] = ..., request_id: _Optional[str] = ..., category: _Optional[str] = ..., source: _Optional[_Union[_common_pb2.Source, str]] = ..., requested_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ResolveResponse(_message.Message):
    __slots__ = ("resolution_id", "tenant_id", "reply", "decision", "action", "confidence", "adapter_version", "ticket_id", "latency_ms", "escalation_reason", "escalation_threshold")
    RESOLUTION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_REASON_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    resolution_id: str
    tenant_id: str
    reply: str
    decision: _common_pb2.Decision
    action: str
    confidence: float
    adapter_version: str
    ticket_id: str
    latency_ms: int
    escalation_reason: str
    escalation_threshold: float
    def __init__(self, resolution_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., reply: _Optional[str] = ..., decision: _Optional[_Union[_common_pb2.Decision, str]] = ..., action: _Optional[str] = ..., confidence: _Optional[float] = ..., adapter_version: _Optional[str] = ..., ticket_id: _Optional[str] = ..., latency_ms: _Optional[int] = ..., escalation_reason: _Optional[str] = ..., escalation_threshold: _Optional[float] = ...) -> None: ...

class Resolution(_message.Message):
    __slots__ = ("resolution_id", "tenant_id", "ticket_id", "decision", "reply", "adapter_version", "created_at", "latency_ms", "action", "confidence", "request_id", "category", "escalation_reason", "escalation_threshold")
    RESOLUTION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_REASON_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    resolution_id: str
    tenant_id: str
    ticket_id: str
    decision: _common_pb2.Decision
    reply: str
    adapter_version: str
    created_at: _timestamp_pb2.Timestamp
    latency_ms: int
    action: str
    confidence: float
    request_id: str
    category: str
    escalation_reason: str
    escalation_threshold: float
    def __init__(self, resolution_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., ticket_id: _Optional[str] = ..., decision: _Optional[_Union[_common_pb2.Decision, str]] = ..., reply: _Optional[str] = ..., adapter_version: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., latency_ms: _Optional[int] = ..., action: _Optional[str] = ..., confidence: _Optional[float] = ..., request_id: _Optional[str] = ..., category: _Optional[str] = ..., escalation_reason: _Optional[str] = ..., escalation_threshold: _Optional[float] = ...) -> None: ...
