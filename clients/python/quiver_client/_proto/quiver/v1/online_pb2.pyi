from quiver_client._proto.quiver.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FeatureStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEATURE_STATUS_UNSPECIFIED: _ClassVar[FeatureStatus]
    PRESENT: _ClassVar[FeatureStatus]
    NULL_VALUE: _ClassVar[FeatureStatus]
    NOT_FOUND: _ClassVar[FeatureStatus]
    OUTSIDE_MAX_AGE: _ClassVar[FeatureStatus]
FEATURE_STATUS_UNSPECIFIED: FeatureStatus
PRESENT: FeatureStatus
NULL_VALUE: FeatureStatus
NOT_FOUND: FeatureStatus
OUTSIDE_MAX_AGE: FeatureStatus

class GetOnlineFeaturesRequest(_message.Message):
    __slots__ = ("features", "feature_service", "entities", "at_ns", "arrow")
    class EntitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.RepeatedValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.RepeatedValue, _Mapping]] = ...) -> None: ...
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    AT_NS_FIELD_NUMBER: _ClassVar[int]
    ARROW_FIELD_NUMBER: _ClassVar[int]
    features: _types_pb2.FeatureList
    feature_service: str
    entities: _containers.MessageMap[str, _types_pb2.RepeatedValue]
    at_ns: int
    arrow: bool
    def __init__(self, features: _Optional[_Union[_types_pb2.FeatureList, _Mapping]] = ..., feature_service: _Optional[str] = ..., entities: _Optional[_Mapping[str, _types_pb2.RepeatedValue]] = ..., at_ns: _Optional[int] = ..., arrow: _Optional[bool] = ...) -> None: ...

class FeatureColumn(_message.Message):
    __slots__ = ("values", "statuses", "event_timestamps_ns")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIMESTAMPS_NS_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[_types_pb2.Value]
    statuses: _containers.RepeatedScalarFieldContainer[FeatureStatus]
    event_timestamps_ns: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, values: _Optional[_Iterable[_Union[_types_pb2.Value, _Mapping]]] = ..., statuses: _Optional[_Iterable[_Union[FeatureStatus, str]]] = ..., event_timestamps_ns: _Optional[_Iterable[int]] = ...) -> None: ...

class GetOnlineFeaturesResponse(_message.Message):
    __slots__ = ("feature_names", "results", "registry_version", "arrow_ipc")
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_VERSION_FIELD_NUMBER: _ClassVar[int]
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    results: _containers.RepeatedCompositeFieldContainer[FeatureColumn]
    registry_version: int
    arrow_ipc: bytes
    def __init__(self, feature_names: _Optional[_Iterable[str]] = ..., results: _Optional[_Iterable[_Union[FeatureColumn, _Mapping]]] = ..., registry_version: _Optional[int] = ..., arrow_ipc: _Optional[bytes] = ...) -> None: ...
