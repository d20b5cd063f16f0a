"""Python client of the Quiver feature store.

Online features over gRPC, training sets over Arrow Flight, push, materialization jobs and
the registry, with one blocking :class:`Client` and one asyncio :class:`AsyncClient`::

    from quiver_client import Client

    with Client("127.0.0.1:6566", token=None) as c:
        r = c.get_online_features(service="ride_ranking_v1", entities={"driver_id": [1001, 1002]})
        r.to_dict()
        ts = c.get_historical_features(spine, service="ride_ranking_v1")
        ts.to_pandas()
"""

from ._async import AsyncClient
from ._client import Client
from ._errors import (
    Conflict,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    JobFailed,
    NotFound,
    PermissionDenied,
    QuiverError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from ._jobs import AsyncMaterializationJob, MaterializationJob
from ._models import (
    ApplyResult,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    JobStatus,
    ObjectChange,
    Plan,
    PushResult,
    RegistryVersion,
    Source,
    ViewProgress,
)
from ._results import OnlineFeatures, TrainingSet
from ._retry import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "AsyncMaterializationJob",
    "ApplyResult",
    "Client",
    "Conflict",
    "DeadlineExceeded",
    "Entity",
    "FailedPrecondition",
    "FeatureService",
    "FeatureView",
    "Field",
    "InvalidArgument",
    "JobFailed",
    "JobStatus",
    "MaterializationJob",
    "NotFound",
    "ObjectChange",
    "OnlineFeatures",
    "PermissionDenied",
    "Plan",
    "PushResult",
    "QuiverError",
    "RegistryVersion",
    "ResourceExhausted",
    "RetryPolicy",
    "Source",
    "TrainingSet",
    "Unauthenticated",
    "Unavailable",
    "ViewProgress",
    "__version__",
]
