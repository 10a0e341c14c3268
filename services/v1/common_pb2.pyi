from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    CUSTOMER: _ClassVar[Role]
    AGENT: _ClassVar[Role]
    AI: _ClassVar[Role]
    SYSTEM: _ClassVar[Role]

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    RESOLVE: _ClassVar[Decision]
    ASK: _ClassVar[Decision]
    ACTION: _ClassVar[Decision]
    ESCALATE: _ClassVar[Decision]

class TicketStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TICKET_STATUS_UNSPECIFIED: _ClassVar[TicketStatus]
    NEW: _ClassVar[TicketStatus]
    OPEN: _ClassVar[TicketStatus]
    PENDING: _ClassVar[TicketStatus]
    ON_HOLD: _ClassVar[TicketStatus]
    SOLVED: _ClassVar[TicketStatus]
    CLOSED: _ClassVar[TicketStatus]

class Source(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_UNSPECIFIED: _ClassVar[Source]
    ZENDESK: _ClassVar[Source]
    INTERCOM: _ClassVar[Source]
    IMPORT: _ClassVar[Source]
ROLE_UNSPECIFIED: Role
CUSTOMER: Role
AGENT: Role
AI: Role
SYSTEM: Role
DECISION_UNSPECIFIED: Decision
RESOLVE: Decision
ASK: Decision
ACTION: Decision
ESCALATE: Decision
TICKET_STATUS_UNSPECIFIED: TicketStatus
NEW: TicketStatus
OPEN: TicketStatus
PENDING: TicketStatus
ON_HOLD: TicketStatus
SOLVED: TicketStatus
CLOSED: TicketStatus
SOURCE_UNSPECIFIED: Source
ZENDESK: Source
INTERCOM: Source
IMPORT: Source

class Turn(_message.Message):
    __slots__ = ("role", "text")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    role: Role
    text: str
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., text: _Optional[str] = ...) -> None: ...
