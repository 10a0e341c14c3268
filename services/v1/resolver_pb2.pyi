import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from clonedesk.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
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

class ActionRun(_message.Message):
    __slots__ = ("call", "status", "answer", "latency_ms", "attempts", "idempotency_key")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[ActionRun.Status]
        OK: _ClassVar[ActionRun.Status]
        FAILED: _ClassVar[ActionRun.Status]
        NOT_ALLOWED: _ClassVar[ActionRun.Status]
        TIMED_OUT: _ClassVar[ActionRun.Status]
        MALFORMED: _ClassVar[ActionRun.Status]
        NOT_CONFIGURED: _ClassVar[ActionRun.Status]
    STATUS_UNSPECIFIED: ActionRun.Status
    OK: ActionRun.Status
    FAILED: ActionRun.Status
    NOT_ALLOWED: ActionRun.Status
    TIMED_OUT: ActionRun.Status
    MALFORMED: ActionRun.Status
    NOT_CONFIGURED: ActionRun.Status
    CALL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    call: str
    status: ActionRun.Status
    answer: str
    latency_ms: int
    attempts: int
    idempotency_key: str
    def __init__(self, call: _Optional[str] = ..., status: _Optional[_Union[ActionRun.Status, str]] = ..., answer: _Optional[str] = ..., latency_ms: _Optional[int] = ..., attempts: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class ResolveResponse(_message.Message):
    __slots__ = ("resolution_id", "tenant_id", "reply", "decision", "action", "confidence", "adapter_version", "ticket_id", "latency_ms", "escalation_reason", "escalation_threshold", "action_run")
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
    ACTION_RUN_FIELD_NUMBER: _ClassVar[int]
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
    action_run: ActionRun
    def __init__(self, resolution_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., reply: _Optional[str] = ..., decision: _Optional[_Union[_common_pb2.Decision, str]] = ..., action: _Optional[str] = ..., confidence: _Optional[float] = ..., adapter_version: _Optional[str] = ..., ticket_id: _Optional[str] = ..., latency_ms: _Optional[int] = ..., escalation_reason: _Optional[str] = ..., escalation_threshold: _Optional[float] = ..., action_run: _Optional[_Union[ActionRun, _Mapping]] = ...) -> None: ...

class Resolution(_message.Message):
    __slots__ = ("resolution_id", "tenant_id", "ticket_id", "decision", "reply", "adapter_version", "created_at", "latency_ms", "action", "confidence", "request_id", "category", "escalation_reason", "escalation_threshold", "action_run", "conversation")
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
    ACTION_RUN_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
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
    action_run: ActionRun
    conversation: _containers.RepeatedCompositeFieldContainer[_common_pb2.Turn]
    def __init__(self, resolution_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., ticket_id: _Optional[str] = ..., decision: _Optional[_Union[_common_pb2.Decision, str]] = ..., reply: _Optional[str] = ..., adapter_version: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., latency_ms: _Optional[int] = ..., action: _Optional[str] = ..., confidence: _Optional[float] = ..., request_id: _Optional[str] = ..., category: _Optional[str] = ..., escalation_reason: _Optional[str] = ..., escalation_threshold: _Optional[float] = ..., action_run: _Optional[_Union[ActionRun, _Mapping]] = ..., conversation: _Optional[_Iterable[_Union[_common_pb2.Turn, _Mapping]]] = ...) -> None: ...
