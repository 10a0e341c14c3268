import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from clonedesk.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OutboundReply(_message.Message):
    __slots__ = ("reply_id", "resolution_id", "tenant_id", "ticket_id", "source", "body", "created_at", "attempt")
    REPLY_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    reply_id: str
    resolution_id: str
    tenant_id: str
    ticket_id: str
    source: _common_pb2.Source
    body: str
    created_at: _timestamp_pb2.Timestamp
    attempt: int
    def __init__(self, reply_id: _Optional[str] = ..., resolution_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., ticket_id: _Optional[str] = ..., source: _Optional[_Union[_common_pb2.Source, str]] = ..., body: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt: _Optional[int] = ...) -> None: ...
