from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PushTarget(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUSH_TARGET_UNSPECIFIED: _ClassVar[PushTarget]
    PUSH_TARGET_ONLINE: _ClassVar[PushTarget]
    PUSH_TARGET_OFFLINE: _ClassVar[PushTarget]
    PUSH_TARGET_ONLINE_AND_OFFLINE: _ClassVar[PushTarget]
PUSH_TARGET_UNSPECIFIED: PushTarget
PUSH_TARGET_ONLINE: PushTarget
PUSH_TARGET_OFFLINE: PushTarget
PUSH_TARGET_ONLINE_AND_OFFLINE: PushTarget

class PushRequest(_message.Message):
    __slots__ = ("feature_view", "arrow_ipc", "to")
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    feature_view: str
    arrow_ipc: bytes
    to: PushTarget
    def __init__(self, feature_view: _Optional[str] = ..., arrow_ipc: _Optional[bytes] = ..., to: _Optional[_Union[PushTarget, str]] = ...) -> None: ...

class PushResponse(_message.Message):
    __slots__ = ("rows", "online_rows_written", "offline_version", "expectation_warnings")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ONLINE_ROWS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPECTATION_WARNINGS_FIELD_NUMBER: _ClassVar[int]
    rows: int
    online_rows_written: int
    offline_version: int
    expectation_warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, rows: _Optional[int] = ..., online_rows_written: _Optional[int] = ..., offline_version: _Optional[int] = ..., expectation_warnings: _Optional[_Iterable[str]] = ...) -> None: ...
