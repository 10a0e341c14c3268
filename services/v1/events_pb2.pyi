import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from clonedesk.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HelpdeskEvent(_message.Message):
    __slots__ = ("event_id", "tenant_id", "ticket_id", "source", "kind", "author_role", "body", "status", "csat_score", "category", "occurred_at", "received_at", "author_id", "internal", "previous_status", "assignee_id", "subject", "decision", "action", "vendor_event_id", "attributes", "action_result")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[HelpdeskEvent.Kind]
        TICKET_CREATED: _ClassVar[HelpdeskEvent.Kind]
        MESSAGE: _ClassVar[HelpdeskEvent.Kind]
        STATUS_CHANGED: _ClassVar[HelpdeskEvent.Kind]
        ASSIGNED: _ClassVar[HelpdeskEvent.Kind]
        CSAT: _ClassVar[HelpdeskEvent.Kind]
    KIND_UNSPECIFIED: HelpdeskEvent.Kind
    TICKET_CREATED: HelpdeskEvent.Kind
    MESSAGE: HelpdeskEvent.Kind
    STATUS_CHANGED: HelpdeskEvent.Kind
    ASSIGNED: HelpdeskEvent.Kind
    CSAT: HelpdeskEvent.Kind
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ROLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CSAT_SCORE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    VENDOR_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    ACTION_RESULT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    tenant_id: str
    ticket_id: str
    source: _common_pb2.Source
    kind: HelpdeskEvent.Kind
    author_role: _common_pb2.Role
    body: str
    status: _common_pb2.TicketStatus
    csat_score: int
    category: str
    occurred_at: _timestamp_pb2.Timestamp
    received_at: _timestamp_pb2.Timestamp
    author_id: str
    internal: bool
    previous_status: _common_pb2.TicketStatus
    assignee_id: str
    subject: str
    decision: _common_pb2.Decision
    action: str
    vendor_event_id: str
    attributes: _containers.ScalarMap[str, str]
    action_result: str
    def __init__(self, event_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., ticket_id: _Optional[str] = ..., source: _Optional[_Union[_common_pb2.Source, str]] = ..., kind: _Optional[_Union[HelpdeskEvent.Kind, str]] = ..., author_role: _Optional[_Union[_common_pb2.Role, str]] = ..., body: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.TicketStatus, str]] = ..., csat_score: _Optional[int] = ..., category: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., author_id: _Optional[str] = ..., internal: _Optional[bool] = ..., previous_status: _Optional[_Union[_common_pb2.TicketStatus, str]] = ..., assignee_id: _Optional[str] = ..., subject: _Optional[str] = ..., decision: _Optional[_Union[_common_pb2.Decision, str]] = ..., action: _Optional[str] = ..., vendor_event_id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., action_result: _Optional[str] = ...) -> None: ...
