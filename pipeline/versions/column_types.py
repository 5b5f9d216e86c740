"""What an uploaded column may hold: numbers (covariates, the target), anomaly labels, and
the types an appended column may be cast to from its set's."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa

from domain.errors import InvalidColumns, InvalidFeatureSet

#: The columns the feature builder adds to a set's own (``pipeline.features.build``): its
#: calendar features, the series' id, last year's value, and below its target lags and
#: rolling windows. A covariate so named would be a second column of that name.
FEATURE_COLUMNS = frozenset(
    {
        *("time_of_day", "day_of_week", "month", "day_of_year", "is_weekend", "is_holiday"),
        *("series_id", "last_year", "last_year_ratio"),
    }
)
_FEATURE_PATTERN = re.compile(r"(lag|roll_mean|roll_std)_\d+")
#: The working columns the feature and forecasting code add beside a set's own.
WORKING_COLUMNS = frozenset(
    {
        *("_observed", "_position", "_seasonal_naive", "_naive", "_future", "_key"),
        *("_labels", "_series", "_target", "_timestamp", "_forecasts"),
    }
)


def is_feature_column(name: str, *, reserved_prefix: bool = True) -> bool:
    """Whether the service names a column of its own ``name``: a feature, a working
    column, or (``reserved_prefix``: as new uploads are held to) any name starting with
    ``_``, the working columns' prefix."""
    if reserved_prefix and name.startswith("_"):
        return True
    return name in FEATURE_COLUMNS | WORKING_COLUMNS or bool(_FEATURE_PATTERN.fullmatch(name))


def named_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A batch's columns as the file names them: pandas' unnamed index column left out
    (a named one, written by ``to_parquet`` of an indexed frame, is read as a column).

    Raises:
        InvalidFeatureSet: a name is repeated.
    """
    frame = frame.drop(columns=[c for c in frame.columns if str(c).startswith("__index_level_")])
    repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if repeated:
        raise InvalidFeatureSet("body", f"column names {repeated} are repeated")
    return frame


def conformed(table: pa.Table, expected: pa.Schema) -> pa.Table:
    """A validated batch in the set's column order and types (numbers cast safely).

    Raises:
        InvalidColumns: a column holds another kind of value, or numbers the set's type
            cannot hold (decimals in an integer column).
    """
    table = table.select(expected.names)
    problems, arrays = {}, []
    for field in expected:
        column = table[field.name]
        kinds = (kind(column.type), kind(field.type))
        if column.type != field.type and (kinds[0] != kinds[1] or kinds[0] is None):
            problems[field.name] = f"holds {column.type}, the set's column {field.type}"
            continue
        try:
            arrays.append(column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            problems[field.name] = f"does not fit the set's {field.type}: {exc}"
    if problems:
        raise InvalidColumns(problems)
    return pa.Table.from_arrays(arrays, schema=expected)


def kind(data_type: pa.DataType) -> str | None:
    """The types a column may be cast between: numbers, and text."""
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type):
        return "number"
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "text"
    return None


def anomaly_labels(column: pd.Series) -> pd.Series:
    """A column of anomaly labels as booleans: 0/1 or false/true, none missing.

    Raises:
        InvalidFeatureSet: a label is missing or another value."""
    if pd.api.types.is_bool_dtype(column) and not column.isna().any():
        return column.astype(bool)
    numeric = pd.api.types.is_numeric_dtype(column)
    values = column.to_numpy(dtype=float if numeric else object)
    valid = (
        np.isin(values, (0, 1)) if numeric else np.array([_is_label(v) for v in values], dtype=bool)
    )
    if not valid.all():
        bad = values[~valid][0]
        raise InvalidFeatureSet(
            "body", f"column {column.name!r} holds {bad}: labels are 0/1 or true/false"
        )
    return column.astype(bool)


def _is_label(value: object) -> bool:
    if isinstance(value, bool | np.bool_):
        return True
    return isinstance(value, int | float | np.number) and value in (0, 1)


def is_number(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
