from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_PENDING: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]

class ViewRunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VIEW_RUN_STATE_UNSPECIFIED: _ClassVar[ViewRunState]
    VIEW_RUN_STATE_PENDING: _ClassVar[ViewRunState]
    VIEW_RUN_STATE_RUNNING: _ClassVar[ViewRunState]
    VIEW_RUN_STATE_SUCCEEDED: _ClassVar[ViewRunState]
    VIEW_RUN_STATE_SKIPPED: _ClassVar[ViewRunState]
    VIEW_RUN_STATE_FAILED: _ClassVar[ViewRunState]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_PENDING: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
VIEW_RUN_STATE_UNSPECIFIED: ViewRunState
VIEW_RUN_STATE_PENDING: ViewRunState
VIEW_RUN_STATE_RUNNING: ViewRunState
VIEW_RUN_STATE_SUCCEEDED: ViewRunState
VIEW_RUN_STATE_SKIPPED: ViewRunState
VIEW_RUN_STATE_FAILED: ViewRunState

class Window(_message.Message):
    __slots__ = ("start_ns", "end_ns")
    START_NS_FIELD_NUMBER: _ClassVar[int]
    END_NS_FIELD_NUMBER: _ClassVar[int]
    start_ns: int
    end_ns: int
    def __init__(self, start_ns: _Optional[int] = ..., end_ns: _Optional[int] = ...) -> None: ...

class Incremental(_message.Message):
    __slots__ = ("end_ns",)
    END_NS_FIELD_NUMBER: _ClassVar[int]
    end_ns: int
    def __init__(self, end_ns: _Optional[int] = ...) -> None: ...

class StartMaterializationRequest(_message.Message):
    __slots__ = ("window", "incremental", "views")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    INCREMENTAL_FIELD_NUMBER: _ClassVar[int]
    VIEWS_FIELD_NUMBER: _ClassVar[int]
    window: Window
    incremental: Incremental
    views: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, window: _Optional[_Union[Window, _Mapping]] = ..., incremental: _Optional[_Union[Incremental, _Mapping]] = ..., views: _Optional[_Iterable[str]] = ...) -> None: ...

class GetMaterializationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListMaterializationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ViewProgress(_message.Message):
    __slots__ = ("view", "state", "rows_done", "rows_expected", "window_start_ns", "window_end_ns", "offline_version", "online_rows", "seconds", "message", "dropped_null_keys", "dropped_null_event_times")
    VIEW_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ROWS_DONE_FIELD_NUMBER: _ClassVar[int]
    ROWS_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_NS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_NS_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ONLINE_ROWS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DROPPED_NULL_KEYS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_NULL_EVENT_TIMES_FIELD_NUMBER: _ClassVar[int]
    view: str
    state: ViewRunState
    rows_done: int
    rows_expected: int
    window_start_ns: int
    window_end_ns: int
    offline_version: int
    online_rows: int
    seconds: float
    message: str
    dropped_null_keys: int
    dropped_null_event_times: int
    def __init__(self, view: _Optional[str] = ..., state: _Optional[_Union[ViewRunState, str]] = ..., rows_done: _Optional[int] = ..., rows_expected: _Optional[int] = ..., window_start_ns: _Optional[int] = ..., window_end_ns: _Optional[int] = ..., offline_version: _Optional[int] = ..., online_rows: _Optional[int] = ..., seconds: _Optional[float] = ..., message: _Optional[str] = ..., dropped_null_keys: _Optional[int] = ..., dropped_null_event_times: _Optional[int] = ...) -> None: ...

class MaterializationJob(_message.Message):
    __slots__ = ("id", "state", "created_at_ns", "finished_at_ns", "views", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    VIEWS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: JobState
    created_at_ns: int
    finished_at_ns: int
    views: _containers.RepeatedCompositeFieldContainer[ViewProgress]
    error: str
    def __init__(self, id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., created_at_ns: _Optional[int] = ..., finished_at_ns: _Optional[int] = ..., views: _Optional[_Iterable[_Union[ViewProgress, _Mapping]]] = ..., error: _Optional[str] = ...) -> None: ...

class ListMaterializationsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[MaterializationJob]
    def __init__(self, jobs: _Optional[_Iterable[_Union[MaterializationJob, _Mapping]]] = ...) -> None: ...
