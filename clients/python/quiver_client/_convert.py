"""Conversions between what users hand over (dicts of columns, pandas and polars
DataFrames, pyarrow Tables) and the wire: Arrow IPC for row data, typed ``Value`` messages
for online entity keys and answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Mapping, Sequence, Union

import pyarrow as pa
import pyarrow.types as pat

from ._errors import InvalidArgument
from ._proto.quiver.v1 import types_pb2
from ._time import ns_to_datetime

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    import pandas
    import polars

__all__ = ["TableLike", "to_arrow", "to_ipc", "entity_columns", "value_to_python", "column_to_arrow"]

TableLike = Union["pa.Table", "pa.RecordBatch", "pandas.DataFrame", "polars.DataFrame", Mapping[str, Sequence[Any]]]
"""Rows: a pyarrow Table or RecordBatch, a pandas or polars DataFrame, or a mapping of
column name to its values."""


def to_arrow(data: TableLike, what: str) -> pa.Table:
    """``data`` as a pyarrow Table, column by column (no per-row Python work for
    DataFrames and Arrow data). A pandas index is dropped; make it a column to send it."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    frame: Any = data  # pandas and polars are optional: recognised by module, not imported
    if module == "pandas":
        return pa.Table.from_pandas(frame, preserve_index=False)
    if module == "polars":
        if type(frame).__name__ == "LazyFrame":
            frame = frame.collect()
        return frame.to_arrow()
    if isinstance(data, Mapping):
        try:
            return pa.table({str(k): v for k, v in data.items()})
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as e:
            raise InvalidArgument(f"{what}: cannot make Arrow columns of the given values: {e}") from None
    raise InvalidArgument(
        f"{what}: expected a pyarrow Table, a pandas or polars DataFrame or a dict of columns, "
        f"not {type(data).__name__}"
    )


def to_ipc(table: pa.Table) -> bytes:
    """The Arrow IPC stream of ``table``."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def _key_value(v: Any, arrow_type: pa.DataType, column: str) -> types_pb2.Value:
    if v is None:
        return types_pb2.Value()
    if pat.is_integer(arrow_type):
        if not -(2**63) <= v < 2**63:
            raise InvalidArgument(f"entity column '{column}': {v} does not fit a 64-bit key")
        return types_pb2.Value(int64_value=v)
    if pat.is_string(arrow_type) or pat.is_large_string(arrow_type) or _is_string_view(arrow_type):
        return types_pb2.Value(string_value=v)
    if pat.is_binary(arrow_type) or pat.is_large_binary(arrow_type) or pat.is_fixed_size_binary(arrow_type):
        return types_pb2.Value(bytes_value=v)
    if pat.is_boolean(arrow_type):
        return types_pb2.Value(bool_value=v)
    if pat.is_floating(arrow_type):
        return types_pb2.Value(double_value=v)
    raise InvalidArgument(
        f"entity column '{column}' has Arrow type {arrow_type}; join keys are integers, strings or bytes"
    )


def _is_string_view(t: pa.DataType) -> bool:
    is_view = getattr(pat, "is_string_view", None)  # pyarrow >= 16
    return bool(is_view and is_view(t))


def entity_columns(table: pa.Table) -> Dict[str, types_pb2.RepeatedValue]:
    """The entity rows of an online read, column by column, as typed wire values."""
    if table.num_columns == 0:
        raise InvalidArgument("entities: give at least one join key column")
    columns: Dict[str, types_pb2.RepeatedValue] = {}
    for name, column in zip(table.column_names, table.columns):
        values = [_key_value(v, column.type, name) for v in column.to_pylist()]
        columns[name] = types_pb2.RepeatedValue(values=values)
    return columns


def value_to_python(v: types_pb2.Value) -> Any:
    """A wire value as Python: None for null, a UTC datetime for a timestamp, a list for a
    list value, else the int, float, str, bytes or bool."""
    kind = v.WhichOneof("kind")
    if kind is None:
        return None
    if kind == "list_value":
        return [value_to_python(x) for x in v.list_value.values]
    if kind == "timestamp_ns_value":
        return ns_to_datetime(v.timestamp_ns_value)
    return getattr(v, kind)


_ARROW_TYPE_OF_KIND = {
    "bool_value": pa.bool_(),
    "int32_value": pa.int32(),
    "int64_value": pa.int64(),
    "float_value": pa.float32(),
    "double_value": pa.float64(),
    "string_value": pa.string(),
    "bytes_value": pa.binary(),
    "timestamp_ns_value": pa.timestamp("ns", tz="UTC"),
}


def _arrow_type(values: Sequence[types_pb2.Value]) -> pa.DataType:
    """The Arrow type of a column of wire values: from the first non-null value's kind."""
    for v in values:
        kind = v.WhichOneof("kind")
        if kind is None:
            continue
        if kind == "list_value":
            elements = [e for x in values if x.WhichOneof("kind") == "list_value" for e in x.list_value.values]
            return pa.list_(_arrow_type(elements))
        return _ARROW_TYPE_OF_KIND[kind]
    return pa.null()


def _raw(v: types_pb2.Value) -> Any:
    """A wire value as Arrow takes it (timestamps as integer nanoseconds)."""
    kind = v.WhichOneof("kind")
    if kind is None:
        return None
    if kind == "list_value":
        return [_raw(x) for x in v.list_value.values]
    return getattr(v, kind)


def column_to_arrow(values: Sequence[types_pb2.Value]) -> pa.Array:
    """A column of wire values as an Arrow array typed by the values' kinds (a column with
    no value at all is of Arrow type null)."""
    arrow_type = _arrow_type(values)
    return pa.array([_raw(v) for v in values], type=arrow_type)
