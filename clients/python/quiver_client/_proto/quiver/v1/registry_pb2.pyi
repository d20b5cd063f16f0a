from quiver_client._proto.quiver.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChangeAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_ACTION_UNSPECIFIED: _ClassVar[ChangeAction]
    CHANGE_ACTION_ADDED: _ClassVar[ChangeAction]
    CHANGE_ACTION_CHANGED: _ClassVar[ChangeAction]
    CHANGE_ACTION_REMOVED: _ClassVar[ChangeAction]
CHANGE_ACTION_UNSPECIFIED: ChangeAction
CHANGE_ACTION_ADDED: ChangeAction
CHANGE_ACTION_CHANGED: ChangeAction
CHANGE_ACTION_REMOVED: ChangeAction

class YamlDocument(_message.Message):
    __slots__ = ("name", "content")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: str
    def __init__(self, name: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class PlanRequest(_message.Message):
    __slots__ = ("documents",)
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[YamlDocument]
    def __init__(self, documents: _Optional[_Iterable[_Union[YamlDocument, _Mapping]]] = ...) -> None: ...

class ObjectChange(_message.Message):
    __slots__ = ("kind", "name", "action", "fields")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    action: ChangeAction
    fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., action: _Optional[_Union[ChangeAction, str]] = ..., fields: _Optional[_Iterable[str]] = ...) -> None: ...

class PlanResponse(_message.Message):
    __slots__ = ("registry_version", "changes")
    REGISTRY_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    registry_version: int
    changes: _containers.RepeatedCompositeFieldContainer[ObjectChange]
    def __init__(self, registry_version: _Optional[int] = ..., changes: _Optional[_Iterable[_Union[ObjectChange, _Mapping]]] = ...) -> None: ...

class ApplyRequest(_message.Message):
    __slots__ = ("documents", "expected_version", "applied_by")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_BY_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[YamlDocument]
    expected_version: int
    applied_by: str
    def __init__(self, documents: _Optional[_Iterable[_Union[YamlDocument, _Mapping]]] = ..., expected_version: _Optional[int] = ..., applied_by: _Optional[str] = ...) -> None: ...

class ApplyResponse(_message.Message):
    __slots__ = ("applied", "version", "changes", "deleted_online_rows")
    class DeletedOnlineRowsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    DELETED_ONLINE_ROWS_FIELD_NUMBER: _ClassVar[int]
    applied: bool
    version: int
    changes: _containers.RepeatedCompositeFieldContainer[ObjectChange]
    deleted_online_rows: _containers.ScalarMap[str, int]
    def __init__(self, applied: _Optional[bool] = ..., version: _Optional[int] = ..., changes: _Optional[_Iterable[_Union[ObjectChange, _Mapping]]] = ..., deleted_online_rows: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("registry_version",)
    REGISTRY_VERSION_FIELD_NUMBER: _ClassVar[int]
    registry_version: int
    def __init__(self, registry_version: _Optional[int] = ...) -> None: ...

class Entity(_message.Message):
    __slots__ = ("name", "join_keys", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    JOIN_KEYS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    join_keys: _containers.RepeatedCompositeFieldContainer[_types_pb2.Field]
    description: str
    def __init__(self, name: _Optional[str] = ..., join_keys: _Optional[_Iterable[_Union[_types_pb2.Field, _Mapping]]] = ..., description: _Optional[str] = ...) -> None: ...

class Source(_message.Message):
    __slots__ = ("name", "path", "format", "timestamp_field", "created_timestamp_field", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIMESTAMP_FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    path: str
    format: str
    timestamp_field: str
    created_timestamp_field: str
    description: str
    def __init__(self, name: _Optional[str] = ..., path: _Optional[str] = ..., format: _Optional[str] = ..., timestamp_field: _Optional[str] = ..., created_timestamp_field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class FeatureView(_message.Message):
    __slots__ = ("name", "entities", "source", "ttl_seconds", "online", "features", "join_keys", "transform", "tags", "owner", "description", "hash", "expectations", "on_failure")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    JOIN_KEYS_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    EXPECTATIONS_FIELD_NUMBER: _ClassVar[int]
    ON_FAILURE_FIELD_NUMBER: _ClassVar[int]
    name: str
    entities: _containers.RepeatedScalarFieldContainer[str]
    source: str
    ttl_seconds: int
    online: bool
    features: _containers.RepeatedCompositeFieldContainer[_types_pb2.Field]
    join_keys: _containers.RepeatedCompositeFieldContainer[_types_pb2.Field]
    transform: str
    tags: _containers.ScalarMap[str, str]
    owner: str
    description: str
    hash: str
    expectations: _containers.RepeatedScalarFieldContainer[str]
    on_failure: str
    def __init__(self, name: _Optional[str] = ..., entities: _Optional[_Iterable[str]] = ..., source: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., online: _Optional[bool] = ..., features: _Optional[_Iterable[_Union[_types_pb2.Field, _Mapping]]] = ..., join_keys: _Optional[_Iterable[_Union[_types_pb2.Field, _Mapping]]] = ..., transform: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., owner: _Optional[str] = ..., description: _Optional[str] = ..., hash: _Optional[str] = ..., expectations: _Optional[_Iterable[str]] = ..., on_failure: _Optional[str] = ...) -> None: ...

class FeatureService(_message.Message):
    __slots__ = ("name", "features", "resolved_features", "tags", "owner", "description")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FEATURES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    features: _containers.RepeatedScalarFieldContainer[str]
    resolved_features: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.ScalarMap[str, str]
    owner: str
    description: str
    def __init__(self, name: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., resolved_features: _Optional[_Iterable[str]] = ..., tags: _Optional[_Mapping[str, str]] = ..., owner: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ListEntitiesResponse(_message.Message):
    __slots__ = ("registry_version", "entities")
    REGISTRY_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    registry_version: int
    entities: _containers.RepeatedCompositeFieldContainer[Entity]
    def __init__(self, registry_version: _Optional[int] = ..., entities: _Optional[_Iterable[_Union[Entity, _Mapping]]] = ...) -> None: ...

class ListSourcesResponse(_message.Message):
    __slots__ = ("registry_version", "sources")
    REGISTRY_VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    registry_version: int
    sources: _containers.RepeatedCompositeFieldContainer[Source]
    def __init__(self, registry_version: _Optional[int] = ..., sources: _Optional[_Iterable[_Union[Source, _Mapping]]] = ...) -> None: ...

class ListFeatureViewsResponse(_message.Message):
    __slots__ = ("registry_version", "feature_views")
    REGISTRY_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VIEWS_FIELD_NUMBER: _ClassVar[int]
    registry_version: int
    feature_views: _containers.RepeatedCompositeFieldContainer[FeatureView]
    def __init__(self, registry_version: _Optional[int] = ..., feature_views: _Optional[_Iterable[_Union[FeatureView, _Mapping]]] = ...) -> None: ...

class ListFeatureServicesResponse(_message.Message):
    __slots__ = ("registry_version", "feature_services")
    REGISTRY_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SERVICES_FIELD_NUMBER: _ClassVar[int]
    registry_version: int
    feature_services: _containers.RepeatedCompositeFieldContainer[FeatureService]
    def __init__(self, registry_version: _Optional[int] = ..., feature_services: _Optional[_Iterable[_Union[FeatureService, _Mapping]]] = ...) -> None: ...

class GetFeatureViewRequest(_message.Message):
    __slots__ = ("name", "registry_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    registry_version: int
    def __init__(self, name: _Optional[str] = ..., registry_version: _Optional[int] = ...) -> None: ...

class GetFeatureViewResponse(_message.Message):
    __slots__ = ("registry_version", "feature_view")
    REGISTRY_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    registry_version: int
    feature_view: FeatureView
    def __init__(self, registry_version: _Optional[int] = ..., feature_view: _Optional[_Union[FeatureView, _Mapping]] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RegistryVersion(_message.Message):
    __slots__ = ("version", "applied_at_ns", "applied_by", "definitions_hash", "added", "changed", "removed")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_BY_FIELD_NUMBER: _ClassVar[int]
    DEFINITIONS_HASH_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    version: int
    applied_at_ns: int
    applied_by: str
    definitions_hash: str
    added: _containers.RepeatedScalarFieldContainer[str]
    changed: _containers.RepeatedScalarFieldContainer[str]
    removed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[int] = ..., applied_at_ns: _Optional[int] = ..., applied_by: _Optional[str] = ..., definitions_hash: _Optional[str] = ..., added: _Optional[_Iterable[str]] = ..., changed: _Optional[_Iterable[str]] = ..., removed: _Optional[_Iterable[str]] = ...) -> None: ...

class HistoryResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[RegistryVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[RegistryVersion, _Mapping]]] = ...) -> None: ...
