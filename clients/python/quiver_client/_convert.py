"""Conversions between what users hand over (dicts of columns, pandas and polars
DataFrames, pyarrow Tables) and the wire: Arrow IPC for row data, typed ``Value`` messages
for online entity keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Union

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from ._errors import InvalidArgument

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    import pandas
    import polars

__all__ = [
    "TableLike",
    "to_arrow",
    "to_ipc",
    "fill_entity_columns",
    "plain_columns",
    "fill_plain_entity_columns",
    "conform_to_view",
]

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


def _key_field(arrow_type: pa.DataType, column: str) -> str:
    """The ``Value`` field that carries keys of ``arrow_type``, decided once per column."""
    if pat.is_integer(arrow_type):
        return "int64_value"
    if pat.is_string(arrow_type) or pat.is_large_string(arrow_type) or _is_string_view(arrow_type):
        return "string_value"
    if pat.is_binary(arrow_type) or pat.is_large_binary(arrow_type) or pat.is_fixed_size_binary(arrow_type):
        return "bytes_value"
    if pat.is_boolean(arrow_type):
        return "bool_value"
    if pat.is_floating(arrow_type):
        return "double_value"
    raise InvalidArgument(
        f"entity column '{column}' has Arrow type {arrow_type}; join keys are integers, strings or bytes"
    )


def _is_string_view(t: pa.DataType) -> bool:
    is_view = getattr(pat, "is_string_view", None)  # pyarrow >= 16
    return bool(is_view and is_view(t))


def fill_entity_columns(entities: Any, table: pa.Table) -> None:
    """Writes the entity rows of an online read into ``entities`` (a request's ``entities``
    map), column by column, as typed wire values. Values are added in place: building them
    apart and handing them to the request copies every one again."""
    if table.num_columns == 0:
        raise InvalidArgument("entities: give at least one join key column")
    for name, column in zip(table.column_names, table.columns):
        field = _key_field(column.type, name)
        items = column.to_pylist()
        if column.type == pa.uint64():
            # The only integer type whose values can exceed a 64-bit key.
            too_big = next((v for v in items if v is not None and v >= 2**63), None)
            if too_big is not None:
                raise InvalidArgument(f"entity column '{name}': {too_big} does not fit a 64-bit key")
        add = entities[name].values.add
        for v in items:
            if v is None:
                add()
            else:
                add(**{field: v})


# The ``Value`` field of each plain Python type a join key can have (bool before int: it is one).
_PLAIN_FIELDS = ((bool, "bool_value"), (int, "int64_value"), (str, "string_value"), (bytes, "bytes_value"))
_INT64_MAX = 2**63 - 1


def plain_columns(data: Any) -> Optional[Dict[str, List[Any]]]:
    """``data`` as columns of plain Python values when it is a dict of lists (or tuples) of
    ints, strings, bytes or bools (None allowed), each column of one type and all of one
    length; else None (the caller takes the Arrow route). A model service's usual request,
    ``{"driver_id": [1001, 1002]}``, goes to the wire this way without a detour through
    Arrow."""
    if not isinstance(data, dict) or not data:
        return None
    columns: Dict[str, List[Any]] = {}
    length = -1
    for name, values in data.items():
        if not isinstance(name, str) or type(values) not in (list, tuple):
            return None
        if length not in (-1, len(values)):
            return None
        length = len(values)
        kind = next((type(v) for v in values if v is not None), None)
        if kind not in (bool, int, str, bytes) or any(v is not None and type(v) is not kind for v in values):
            return None
        if kind is int and any(v is not None and not -_INT64_MAX - 1 <= v <= _INT64_MAX for v in values):
            return None  # Arrow's route names the value that does not fit
        columns[name] = list(values)
    return columns


def fill_plain_entity_columns(entities: Any, columns: Mapping[str, Sequence[Any]]) -> None:
    """Writes columns checked by :func:`plain_columns` into a request's ``entities`` map."""
    for name, values in columns.items():
        kind = next(type(v) for v in values if v is not None)
        field = next(f for t, f in _PLAIN_FIELDS if t is kind)
        add = entities[name].values.add
        for v in values:
            if v is None:
                add()
            else:
                add(**{field: v})


_NUMBERS = {"int32": pa.int32(), "int64": pa.int64(), "float32": pa.float32(), "float64": pa.float64()}


def conform_to_view(table: pa.Table, view: Any) -> pa.Table:
    """``table`` with its number columns cast to the number types ``view`` (a
    :class:`quiver_client.FeatureView`) declares for its join keys and features, as pandas
    hands over ``int64`` and ``float64`` whatever the view says. Integers must fit exactly (a
    value out of range is an error naming the column); ``float64`` values are rounded to
    ``float32`` where the view declares ``float32``, and one beyond its range is an error.
    Every other column goes as it is, for the server to check."""
    declared = {f.name: f.dtype for f in (*view.join_keys, *view.features)}
    for i, name in enumerate(table.column_names):
        dtype = declared.get(name, "")
        target = _NUMBERS.get(dtype)
        column = table.column(i)
        if target is None or column.type == target:
            continue
        if not (pat.is_integer(column.type) or pat.is_floating(column.type)):
            continue
        if pat.is_floating(target) and pat.is_floating(column.type):
            cast = pc.cast(column, target, safe=False)
            overflow = pc.and_kleene(pc.is_finite(column), pc.invert(pc.is_finite(cast)))
            if pc.any(overflow).as_py():
                raise InvalidArgument(
                    f"push: column '{name}' holds values beyond the range of {dtype}, the type "
                    f"feature view '{view.name}' declares"
                )
        else:
            try:
                cast = pc.cast(column, target, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise InvalidArgument(
                    f"push: column '{name}' holds values that {dtype}, the type feature view "
                    f"'{view.name}' declares, cannot hold exactly"
                ) from None
        table = table.set_column(i, pa.field(name, target), cast)
    return table
