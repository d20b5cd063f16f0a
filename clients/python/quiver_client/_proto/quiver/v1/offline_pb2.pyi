from quiver_client._proto.quiver.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetHistoricalFeaturesRequest(_message.Message):
    __slots__ = ("features", "feature_service", "spine_arrow_ipc", "full_feature_names", "timestamp_column")
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    SPINE_ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    FULL_FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_COLUMN_FIELD_NUMBER: _ClassVar[int]
    features: _types_pb2.FeatureList
    feature_service: str
    spine_arrow_ipc: bytes
    full_feature_names: bool
    timestamp_column: str
    def __init__(self, features: _Optional[_Union[_types_pb2.FeatureList, _Mapping]] = ..., feature_service: _Optional[str] = ..., spine_arrow_ipc: _Optional[bytes] = ..., full_feature_names: _Optional[bool] = ..., timestamp_column: _Optional[str] = ...) -> None: ...

class GetHistoricalFeaturesResponse(_message.Message):
    __slots__ = ("arrow_ipc", "manifest")
    ARROW_IPC_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    arrow_ipc: bytes
    manifest: TrainingSetManifest
    def __init__(self, arrow_ipc: _Optional[bytes] = ..., manifest: _Optional[_Union[TrainingSetManifest, _Mapping]] = ...) -> None: ...

class TrainingSetManifest(_message.Message):
    __slots__ = ("rows", "registry_version", "table_versions", "manifest_json")
    class TableVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ROWS_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_VERSION_FIELD_NUMBER: _ClassVar[int]
    TABLE_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_JSON_FIELD_NUMBER: _ClassVar[int]
    rows: int
    registry_version: int
    table_versions: _containers.ScalarMap[str, int]
    manifest_json: str
    def __init__(self, rows: _Optional[int] = ..., registry_version: _Optional[int] = ..., table_versions: _Optional[_Mapping[str, int]] = ..., manifest_json: _Optional[str] = ...) -> None: ...
