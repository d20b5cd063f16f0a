from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetStatisticsRequest(_message.Message):
    __slots__ = ("feature_view", "run")
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    feature_view: str
    run: str
    def __init__(self, feature_view: _Optional[str] = ..., run: _Optional[str] = ...) -> None: ...

class GetStatisticsResponse(_message.Message):
    __slots__ = ("feature_view", "run_id", "status", "window_start_ns", "window_end_ns", "rows", "features", "broken_expectations")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FeatureStatistics
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FeatureStatistics, _Mapping]] = ...) -> None: ...
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_NS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_NS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    BROKEN_EXPECTATIONS_FIELD_NUMBER: _ClassVar[int]
    feature_view: str
    run_id: str
    status: str
    window_start_ns: int
    window_end_ns: int
    rows: int
    features: _containers.MessageMap[str, FeatureStatistics]
    broken_expectations: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, feature_view: _Optional[str] = ..., run_id: _Optional[str] = ..., status: _Optional[str] = ..., window_start_ns: _Optional[int] = ..., window_end_ns: _Optional[int] = ..., rows: _Optional[int] = ..., features: _Optional[_Mapping[str, FeatureStatistics]] = ..., broken_expectations: _Optional[_Iterable[str]] = ...) -> None: ...

class FeatureStatistics(_message.Message):
    __slots__ = ("count", "nulls", "distinct", "non_finite", "min", "max", "mean", "stddev", "quantiles", "bins", "top")
    class QuantilesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    COUNT_FIELD_NUMBER: _ClassVar[int]
    NULLS_FIELD_NUMBER: _ClassVar[int]
    DISTINCT_FIELD_NUMBER: _ClassVar[int]
    NON_FINITE_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STDDEV_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    BINS_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    count: int
    nulls: int
    distinct: int
    non_finite: int
    min: float
    max: float
    mean: float
    stddev: float
    quantiles: _containers.ScalarMap[str, float]
    bins: Bins
    top: TopValues
    def __init__(self, count: _Optional[int] = ..., nulls: _Optional[int] = ..., distinct: _Optional[int] = ..., non_finite: _Optional[int] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., mean: _Optional[float] = ..., stddev: _Optional[float] = ..., quantiles: _Optional[_Mapping[str, float]] = ..., bins: _Optional[_Union[Bins, _Mapping]] = ..., top: _Optional[_Union[TopValues, _Mapping]] = ...) -> None: ...

class Bins(_message.Message):
    __slots__ = ("edges", "counts")
    EDGES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    edges: _containers.RepeatedScalarFieldContainer[float]
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, edges: _Optional[_Iterable[float]] = ..., counts: _Optional[_Iterable[int]] = ...) -> None: ...

class TopValues(_message.Message):
    __slots__ = ("values", "other")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    OTHER_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[ValueCount]
    other: int
    def __init__(self, values: _Optional[_Iterable[_Union[ValueCount, _Mapping]]] = ..., other: _Optional[int] = ...) -> None: ...

class ValueCount(_message.Message):
    __slots__ = ("value", "count")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    value: str
    count: int
    def __init__(self, value: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class Period(_message.Message):
    __slots__ = ("start_ns", "end_ns")
    START_NS_FIELD_NUMBER: _ClassVar[int]
    END_NS_FIELD_NUMBER: _ClassVar[int]
    start_ns: int
    end_ns: int
    def __init__(self, start_ns: _Optional[int] = ..., end_ns: _Optional[int] = ...) -> None: ...

class GetDriftRequest(_message.Message):
    __slots__ = ("feature_view", "reference", "current")
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    feature_view: str
    reference: Period
    current: Period
    def __init__(self, feature_view: _Optional[str] = ..., reference: _Optional[_Union[Period, _Mapping]] = ..., current: _Optional[_Union[Period, _Mapping]] = ...) -> None: ...

class DriftThresholds(_message.Message):
    __slots__ = ("psi", "ks", "js")
    PSI_FIELD_NUMBER: _ClassVar[int]
    KS_FIELD_NUMBER: _ClassVar[int]
    JS_FIELD_NUMBER: _ClassVar[int]
    psi: float
    ks: float
    js: float
    def __init__(self, psi: _Optional[float] = ..., ks: _Optional[float] = ..., js: _Optional[float] = ...) -> None: ...

class FeatureDrift(_message.Message):
    __slots__ = ("reference_values", "current_values", "psi", "ks", "js", "drifted")
    REFERENCE_VALUES_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VALUES_FIELD_NUMBER: _ClassVar[int]
    PSI_FIELD_NUMBER: _ClassVar[int]
    KS_FIELD_NUMBER: _ClassVar[int]
    JS_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_FIELD_NUMBER: _ClassVar[int]
    reference_values: int
    current_values: int
    psi: float
    ks: float
    js: float
    drifted: bool
    def __init__(self, reference_values: _Optional[int] = ..., current_values: _Optional[int] = ..., psi: _Optional[float] = ..., ks: _Optional[float] = ..., js: _Optional[float] = ..., drifted: _Optional[bool] = ...) -> None: ...

class GetDriftResponse(_message.Message):
    __slots__ = ("feature_view", "table_version", "reference", "current", "thresholds", "features", "drifted")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FeatureDrift
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FeatureDrift, _Mapping]] = ...) -> None: ...
    FEATURE_VIEW_FIELD_NUMBER: _ClassVar[int]
    TABLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_FIELD_NUMBER: _ClassVar[int]
    feature_view: str
    table_version: int
    reference: Period
    current: Period
    thresholds: DriftThresholds
    features: _containers.MessageMap[str, FeatureDrift]
    drifted: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, feature_view: _Optional[str] = ..., table_version: _Optional[int] = ..., reference: _Optional[_Union[Period, _Mapping]] = ..., current: _Optional[_Union[Period, _Mapping]] = ..., thresholds: _Optional[_Union[DriftThresholds, _Mapping]] = ..., features: _Optional[_Mapping[str, FeatureDrift]] = ..., drifted: _Optional[_Iterable[str]] = ...) -> None: ...

class GetSkewRequest(_message.Message):
    __slots__ = ("features", "feature_service", "sample")
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    features: _containers.RepeatedScalarFieldContainer[str]
    feature_service: str
    sample: int
    def __init__(self, features: _Optional[_Iterable[str]] = ..., feature_service: _Optional[str] = ..., sample: _Optional[int] = ...) -> None: ...

class SkewExample(_message.Message):
    __slots__ = ("entity", "online", "online_status", "offline")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    ONLINE_STATUS_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_FIELD_NUMBER: _ClassVar[int]
    entity: str
    online: str
    online_status: str
    offline: str
    def __init__(self, entity: _Optional[str] = ..., online: _Optional[str] = ..., online_status: _Optional[str] = ..., offline: _Optional[str] = ...) -> None: ...

class FeatureSkew(_message.Message):
    __slots__ = ("differ", "examples")
    DIFFER_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    differ: int
    examples: _containers.RepeatedCompositeFieldContainer[SkewExample]
    def __init__(self, differ: _Optional[int] = ..., examples: _Optional[_Iterable[_Union[SkewExample, _Mapping]]] = ...) -> None: ...

class GetSkewResponse(_message.Message):
    __slots__ = ("at_ns", "entities", "features", "differing")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FeatureSkew
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FeatureSkew, _Mapping]] = ...) -> None: ...
    AT_NS_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    DIFFERING_FIELD_NUMBER: _ClassVar[int]
    at_ns: int
    entities: int
    features: _containers.MessageMap[str, FeatureSkew]
    differing: int
    def __init__(self, at_ns: _Optional[int] = ..., entities: _Optional[int] = ..., features: _Optional[_Mapping[str, FeatureSkew]] = ..., differing: _Optional[int] = ...) -> None: ...
