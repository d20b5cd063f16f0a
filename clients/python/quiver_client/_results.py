"""Results with data in them: online features (values, statuses and event times per entity
row) and training sets (an Arrow table and its manifest)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

import pyarrow as pa

from ._proto.quiver.v1 import online_pb2
from ._time import optional_time

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    import pandas
    import polars

__all__ = ["OnlineFeatures", "TrainingSet"]


def _need(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"{module} is not installed: pip install 'quiver-client[{extra}]'") from None


class OnlineFeatures:
    """The answer of an online read: one row per requested entity row, in request order,
    with the entity key columns first, then one column per feature named ``view:feature``.

    Attributes:
        feature_names: ``view:feature`` of each feature, in request order.
        registry_version: the registry version whose definitions answered.
    """

    def __init__(
        self, entities: Union[pa.Table, Dict[str, List[Any]]], response: online_pb2.GetOnlineFeaturesResponse
    ) -> None:
        # Plain columns (a dict of lists) become an Arrow table only when one is asked for.
        self._given = entities
        self._table: Optional[pa.Table] = entities if isinstance(entities, pa.Table) else None
        self._rows = entities.num_rows if isinstance(entities, pa.Table) else len(next(iter(entities.values())))
        self.feature_names: List[str] = list(response.feature_names)
        self.registry_version: int = response.registry_version
        # Asked for as one Arrow record batch: per feature its values (declared type),
        # ``:status`` and ``:event_timestamp`` columns.
        self._batch: pa.Table = pa.ipc.open_stream(response.arrow_ipc).read_all()

    @property
    def _entities(self) -> pa.Table:
        if self._table is None:
            self._table = pa.table(self._given)
        return self._table

    def __len__(self) -> int:
        return int(self._rows)

    def __repr__(self) -> str:
        return f"OnlineFeatures(rows={len(self)}, features={self.feature_names})"

    def _entity_dict(self) -> Dict[str, List[Any]]:
        if isinstance(self._given, dict):
            return {name: list(values) for name, values in self._given.items()}
        return {name: self._entities.column(name).to_pylist() for name in self._entities.column_names}

    def to_dict(self) -> Dict[str, List[Any]]:
        """Entity columns and feature values as lists; None where a feature has no value
        (status ``NULL_VALUE``, ``NOT_FOUND`` or ``OUTSIDE_MAX_AGE``)."""
        out = self._entity_dict()
        for name in self.feature_names:
            column = self._batch.column(name)
            if pa.types.is_timestamp(column.type):
                out[name] = [optional_time(ns) for ns in column.cast(pa.int64()).fill_null(0).to_pylist()]
            else:
                out[name] = column.to_pylist()
        return out

    def statuses(self) -> Dict[str, List[str]]:
        """Per feature, the status of each value: ``PRESENT``, ``NULL_VALUE``,
        ``NOT_FOUND`` or ``OUTSIDE_MAX_AGE``."""
        return {f: [str(s) for s in self._batch.column(f"{f}:status").to_pylist()] for f in self.feature_names}

    def event_timestamps(self) -> Dict[str, List[Optional[datetime]]]:
        """Per feature, the event time (UTC) of the row each value came from; None when
        nothing was found."""
        out: Dict[str, List[Optional[datetime]]] = {}
        for f in self.feature_names:
            times = self._batch.column(f"{f}:event_timestamp").cast(pa.int64()).fill_null(0).to_pylist()
            out[f] = [optional_time(ns) for ns in times]
        return out

    def to_arrow(self) -> pa.Table:
        """A pyarrow Table: the entity columns, then each feature in its declared type
        (``float32``, ``int64``, ``list<float32>``, timestamps in ns UTC, ...)."""
        table = self._entities
        for name in self.feature_names:
            table = table.append_column(name, self._batch.column(name))
        return table

    def to_pandas(self) -> "pandas.DataFrame":
        """:meth:`to_arrow` as a pandas DataFrame (needs the ``pandas`` extra)."""
        _need("pandas", "pandas")
        return self.to_arrow().to_pandas()


class TrainingSet:
    """A training set: each spine row (in order) with the features as they were at its
    timestamp.

    Attributes:
        ticket: the Flight ticket it can be fetched again with (until it expires).
        rows: its row count.
        manifest: how it was made (registry version, Delta table versions, spine hash, ...),
            the document ``quiver historical`` writes beside its output.
    """

    def __init__(self, table: pa.Table, ticket: str, manifest: Dict[str, Any]) -> None:
        self._table = table
        self.ticket: str = ticket
        self.manifest: Dict[str, Any] = manifest
        self.rows: int = int(table.num_rows)

    def __len__(self) -> int:
        return self.rows

    def __repr__(self) -> str:
        return f"TrainingSet(rows={self.rows}, columns={self._table.column_names})"

    def to_arrow(self) -> pa.Table:
        """The training set as a pyarrow Table."""
        return self._table

    def to_pandas(self) -> "pandas.DataFrame":
        """The training set as a pandas DataFrame (needs the ``pandas`` extra)."""
        _need("pandas", "pandas")
        return self._table.to_pandas()

    def to_polars(self) -> "polars.DataFrame":
        """The training set as a polars DataFrame (needs the ``polars`` extra)."""
        frame: polars.DataFrame = _need("polars", "polars").from_arrow(self._table)
        return frame

    def manifest_json(self) -> str:
        """The manifest as JSON text, to store beside a saved copy of the set."""
        return json.dumps(self.manifest, indent=2, sort_keys=True)
