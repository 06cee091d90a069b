"""Model instances from the rows of written-out SELECTs, as the ORM would build them.

The hot paths (an API key per request, a send's conversation and device) read a row or two
with SQL written once per process: the ORM's query compiler, and even `Model.objects.raw`
(which resolves its columns and converters per query), cost more CPU than the statements
they ran. `ModelColumns` names a model's columns for such a SELECT and turns the values back
into an instance, through the same converters and `Model.from_db` the ORM uses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model

M = TypeVar("M", bound=Model)

Converter = Callable[[Any, Any, Any], Any]


class ModelColumns(Generic[M]):
    """All concrete columns of `model`, in field order, as one part of a SELECT list."""

    def __init__(self, model: type[M]) -> None:
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.names = [f.attname for f in self.fields]
        self.width = len(self.fields)
        pk = model._meta.pk
        assert pk is not None
        self._pk_at = self.fields.index(pk)
        # Per database vendor (a process talks to one): (position, converters, column). The
        # backend's converters are methods of the first connection's operations; they read
        # the value, the column, the settings and the database's time zone, which every
        # connection to it shares.
        self._converters: dict[str, list[tuple[int, list[Converter], Any]]] = {}

    def select(self, alias: str) -> str:
        """`alias."col", …` for the SELECT list (`alias` as the statement names the table).
        Quoted as PostgreSQL and SQLite both quote, so statements can be built at import."""
        return ", ".join(f'{alias}."{f.column}"' for f in self.fields)

    def _converters_now(self) -> list[tuple[int, list[Converter], Any]]:
        found = self._converters.get(connection.vendor)
        if found is None:
            found = []
            for i, field in enumerate(self.fields):
                col = field.get_col(self.model._meta.db_table)
                converters = [
                    *connection.ops.get_db_converters(col),
                    *col.get_db_converters(connection),
                ]
                if converters:
                    found.append((i, converters, col))
            self._converters[connection.vendor] = found
        return found

    def load(self, row: Sequence[Any], start: int = 0) -> M | None:
        """The instance held by `row[start:start + width]`; None when its primary key is NULL
        (the missing side of a LEFT JOIN)."""
        values = list(row[start : start + self.width])
        if values[self._pk_at] is None:
            return None
        db = connections[DEFAULT_DB_ALIAS]  # the connection itself: the proxy looks it up per use
        for i, converters, col in self._converters_now():
            value = values[i]
            for convert in converters:
                value = convert(value, col, db)
            values[i] = value
        return self.model.from_db(db.alias, self.names, values)


@functools.cache
def _columns_of(model: type[Model]) -> ModelColumns[Any]:
    return ModelColumns(model)


def rows_where_in(model: type[M], field_name: str, values: Sequence[Any]) -> list[M]:
    """The rows whose `field_name` is one of `values`, as instances (in no particular order)."""
    if not values:
        return []
    columns: ModelColumns[M] = _columns_of(model)
    field: Any = model._meta.get_field(field_name)
    sql = (
        f'SELECT {columns.select("t")} FROM "{model._meta.db_table}" t'  # noqa: S608
        f' WHERE t."{field.column}" IN ({", ".join(["%s"] * len(values))})'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [field.get_db_prep_value(v, connection) for v in values])
        found = [columns.load(row) for row in cursor.fetchall()]
    return [row for row in found if row is not None]
