"""Datasets: parsing uploads (CSV or Parquet), inferring column types, storing them per user."""

from __future__ import annotations

import io
import math
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from nemo_server.common.db import Database
from nemo_server.common.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, Unprocessable
from nemo_server.ml.models import DatasetRow
from nemo_server.ml.settings import MLSettings

if TYPE_CHECKING:
    import pandas as pd

_LINE = re.compile(r"line (\d+)", re.IGNORECASE)
_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _parse_csv(data: bytes) -> pd.DataFrame:
    import pandas as pd

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadRequest(
            f"malformed CSV: line {line} is not valid UTF-8", param="file", extra={"line": line}
        ) from None
    if not text.strip():
        raise BadRequest("malformed CSV: the file is empty", param="file")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=_delimiter(text))
    except pd.errors.ParserError as exc:
        message = str(exc)
        fields = _FIELDS.search(message)
        if fields:
            expected, line, saw = fields.groups()
            raise BadRequest(
                f"malformed CSV at line {line}: expected {expected} fields, saw {saw}",
                param="file",
                extra={"line": int(line)},
            ) from None
        match = _LINE.search(message)
        line_no = int(match.group(1)) if match else None
        where = f" at line {line_no}" if line_no else ""
        raise BadRequest(
            f"malformed CSV{where}: {message}", param="file", extra={"line": line_no}
        ) from None
    except (pd.errors.EmptyDataError, csv_error()) as exc:
        raise BadRequest(f"malformed CSV: {exc}", param="file") from None
    return frame


def _delimiter(text: str) -> str:
    import csv

    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def csv_error() -> type[Exception]:
    import csv

    return csv.Error


def _parse_parquet(data: bytes) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise BadRequest(f"malformed Parquet file: {exc}", param="file") from None


def _infer_types(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of text that are all dates become datetimes; low-cardinality text stays text."""
    import pandas as pd

    for name in frame.columns:
        col = frame[name]
        if col.dtype == object or str(col.dtype) in ("string", "str"):
            sample = col.dropna().astype(str).head(200)
            if len(sample) and sample.str.match(r"^\d{4}-\d{2}-\d{2}").all():
                try:
                    frame[name] = pd.to_datetime(col, errors="raise")
                except (ValueError, TypeError):
                    pass
    return frame


def _kind(col: pd.Series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(col):
        return "boolean"
    if pd.api.types.is_integer_dtype(col):
        return "integer"
    if pd.api.types.is_float_dtype(col):
        non_null = col.dropna()
        if len(non_null) and (non_null == non_null.round()).all() and non_null.abs().max() < 2**53:
            return "integer" if col.isna().any() else "float"
        return "float"
    if pd.api.types.is_datetime64_any_dtype(col):
        return "datetime"
    unique = col.nunique(dropna=True)
    return "categorical" if unique <= max(20, len(col) // 20) else "string"


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def describe_columns(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Type and statistics of every column."""
    out: list[dict[str, Any]] = []
    for name in frame.columns:
        col = frame[name]
        info: dict[str, Any] = {
            "name": str(name),
            "dtype": _kind(col),
            "nulls": int(col.isna().sum()),
            "unique": int(col.nunique(dropna=True)),
        }
        if info["dtype"] in ("integer", "float") and col.notna().any():
            info.update(min=_num(col.min()), max=_num(col.max()), mean=_num(col.mean()))
        elif info["dtype"] == "datetime" and col.notna().any():
            info.update(min=str(col.min()), max=str(col.max()))
        out.append(info)
    return out


def is_numeric(info: dict[str, Any]) -> bool:
    return info["dtype"] in ("integer", "float", "boolean")


class DatasetStore:
    """Dataset files (Parquet, under the data dir) and their rows in the service database."""

    def __init__(self, db: Database, settings: MLSettings) -> None:
        self.db = db
        self.settings = settings
        self.root = settings.storage_dir() / "datasets"

    def create(self, user_id: str, filename: str, content_type: str, data: bytes) -> DatasetRow:
        s = self.settings
        if len(data) > s.max_dataset_bytes:
            raise PayloadTooLarge(
                f"dataset is {len(data)} bytes; the limit is {s.max_dataset_bytes}", param="file"
            )
        with self.db.session() as session:
            count = session.scalar(
                select(func.count()).select_from(DatasetRow).where(DatasetRow.user_id == user_id)
            )
        if (count or 0) >= s.max_datasets_per_user:
            raise Conflict(f"you already keep {count} datasets; delete some first", param="file")
        is_parquet = data[:4] == b"PAR1" or filename.lower().endswith(".parquet")
        frame = _parse_parquet(data) if is_parquet else _parse_csv(data)
        if len(frame.columns) == 0 or len(frame) == 0:
            raise BadRequest("the dataset has no rows or no columns", param="file")
        if len(frame) > s.max_rows:
            raise PayloadTooLarge(f"{len(frame)} rows; the limit is {s.max_rows}", param="file")
        if len(frame.columns) > s.max_columns:
            raise PayloadTooLarge(
                f"{len(frame.columns)} columns; the limit is {s.max_columns}", param="file"
            )
        names = [str(c) for c in frame.columns]
        if len(set(names)) != len(names):
            raise BadRequest("column names must be unique", param="file")
        frame.columns = names
        frame = _infer_types(frame)
        dataset_id = "ds_" + uuid.uuid4().hex[:24]
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.root / f"{dataset_id}.parquet"
        frame.to_parquet(path, index=False)
        row = DatasetRow(
            id=dataset_id,
            user_id=user_id,
            name=(filename or dataset_id)[:255],
            source_format="parquet" if is_parquet else "csv",
            n_rows=len(frame),
            n_columns=len(frame.columns),
            size_bytes=len(data),
            columns=describe_columns(frame),
            path=str(path),
        )
        with self.db.session() as session:
            session.add(row)
        return row

    def list(self, user_id: str) -> list[DatasetRow]:
        with self.db.session() as session:
            rows = session.scalars(
                select(DatasetRow)
                .where(DatasetRow.user_id == user_id)
                .order_by(DatasetRow.created_at.desc())
            )
            return list(rows)

    def get(self, user_id: str, dataset_id: str, param: str = "dataset_id") -> DatasetRow:
        with self.db.session() as session:
            row = session.get(DatasetRow, dataset_id)
        if row is None or row.user_id != user_id:
            raise NotFound(f"no dataset {dataset_id!r}", param=param)
        return row

    def load(self, row: DatasetRow) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(row.path)

    def preview(self, user_id: str, dataset_id: str, limit: int) -> tuple[list[str], list[dict]]:
        import json

        row = self.get(user_id, dataset_id)
        frame = self.load(row).head(limit)
        records = json.loads(frame.to_json(orient="records", date_format="iso"))
        return list(frame.columns), records

    def delete(self, user_id: str, dataset_id: str) -> None:
        row = self.get(user_id, dataset_id)
        with self.db.session() as session:
            obj = session.get(DatasetRow, row.id)
            if obj is not None:
                session.delete(obj)
        Path(row.path).unlink(missing_ok=True)


def check_columns(row: DatasetRow, names: list[str], param: str, *, numeric: bool = False) -> None:
    """422 naming `param` when a column is unknown (or, with `numeric`, not numeric)."""
    columns = {c["name"]: c for c in row.columns}
    for name in names:
        if name not in columns:
            raise Unprocessable(
                f"{param}: unknown column {name!r}; the dataset has {sorted(columns)[:50]}",
                param=param,
            )
        if numeric and not is_numeric(columns[name]):
            raise Unprocessable(
                f"{param}: column {name!r} is {columns[name]['dtype']}, not numeric", param=param
            )
