"""Writes of the hot paths as SQL built once per process (smsgate/rows.py reads).

Django's compilers rebuild the same statement for every request: on an inbound SMS they cost
more CPU than PostgreSQL spent running the statements (docs/performance.md). The statements
here are the ones those compilers build for plain values (no expressions), with the values
prepared exactly as they prepare them (`pre_save`, then `get_db_prep_save`), so what lands in
the database is the same.

Only table and column names from the models are formatted into the SQL; every value is a
query parameter.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import AutoField, Field, Model

# Fields whose preparation leaves a value of these types (or None) as it is: a str for a text
# column, an int for an integer one. Only these exact classes: a subclass may prepare values.
_PLAIN: dict[type[Field[Any, Any]], tuple[type, ...]] = {
    models.CharField: (str,),
    models.TextField: (str,),
    models.IntegerField: (int,),
    models.BigIntegerField: (int,),
    models.SmallIntegerField: (int,),
    models.PositiveIntegerField: (int,),
    models.PositiveSmallIntegerField: (int,),
    models.BooleanField: (bool,),
}


@dataclass(frozen=True)
class _Column:
    field: Field[Any, Any]
    attname: str
    plain: tuple[type, ...]  # value types that need no preparation (empty: always prepare)


# Date and time fields a row leaves empty (a message's send_at, sent_at, …): their preparation
# of None is None, and without auto_now/auto_now_add their pre_save only reads the attribute.
_NULL_ONLY: dict[type[Field[Any, Any]], tuple[type, ...]] = {
    models.DateTimeField: (type(None),),
    models.DateField: (type(None),),
}


def _column(field: Field[Any, Any]) -> _Column:
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    plain = _PLAIN.get(type(target), ())
    if not plain and not getattr(field, "auto_now", False):
        if not getattr(field, "auto_now_add", False):
            plain = _NULL_ONLY.get(type(target), ())
    return _Column(field, field.attname, plain)


@functools.cache
def _insert_parts(model: type[Model], returning: bool) -> tuple[list[_Column], str, str, str]:
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    # A database-generated id is left to the database, as the ORM does for a new row.
    fields = [f for f in model._meta.concrete_fields if not isinstance(f, AutoField)]
    head = f"INSERT INTO {table} ({', '.join(quote(str(f.column)) for f in fields)}) VALUES "  # noqa: S608
    row = f"({', '.join(['%s'] * len(fields))})"
    tail = ""
    if returning:
        tail = f" ON CONFLICT DO NOTHING RETURNING {table}.{quote(str(model._meta.pk.column))}"
    return [_column(f) for f in fields], head, row, tail


def insert_sql(
    model: type[Model], objs: Sequence[Model], *, ignore_conflicts: bool = False
) -> tuple[str, tuple[Any, ...]]:
    """One INSERT of `objs` as SQL and parameters, to run alone or as a part of a WITH.

    `ignore_conflicts` adds ON CONFLICT DO NOTHING RETURNING the primary key, so the caller
    learns which rows were really inserted. The objects count as saved afterwards.
    """
    columns, head, row, tail = _insert_parts(model, ignore_conflicts)
    # The connection itself, not the proxy: the proxy's per-thread lookup, made for every
    # attribute each field's preparation reads, cost more than the preparation.
    db = connections[DEFAULT_DB_ALIAS]
    params: list[Any] = []
    for obj in objs:
        # As bulk_create: a related object set on the instance gives its id to the column.
        obj._prepare_related_fields_for_save(operation_name="bulk_create")  # type: ignore[attr-defined]
        for column in columns:
            if column.plain:
                value = getattr(obj, column.attname)
                if value is None or type(value) in column.plain:
                    params.append(value)
                    continue
            field = column.field
            params.append(field.get_db_prep_save(field.pre_save(obj, True), db))
        obj._state.adding = False
        obj._state.db = db.alias
    return head + ", ".join([row] * len(objs)) + tail, tuple(params)


@functools.cache
def _update_sql(model: type[Model], names: tuple[str, ...]) -> tuple[list[Field[Any, Any]], str]:
    quote = connection.ops.quote_name
    meta = model._meta
    fields: list[Field[Any, Any]] = [meta.get_field(name) for name in names]  # type: ignore[misc]
    assignments = ", ".join(f"{quote(str(f.column))} = %s" for f in fields)
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {assignments}"  # noqa: S608
        f" WHERE {quote(str(meta.pk.column))} = %s"
    )
    return fields, sql


def update_sql(
    model: type[Model], pk: Any, values: Mapping[str, Any]
) -> tuple[str, tuple[Any, ...]]:
    """The UPDATE of one row's fields (by name or attribute name) to plain values (no
    expressions), as SQL and parameters, to run alone or as a part of a WITH."""
    fields, sql = _update_sql(model, tuple(values))
    db = connections[DEFAULT_DB_ALIAS]
    params = [
        f.get_db_prep_save(value, db) for f, value in zip(fields, values.values(), strict=True)
    ]
    params.append(model._meta.pk.get_db_prep_value(pk, db))
    return sql, tuple(params)


def update_by_pk(model: type[Model], pk: Any, values: Mapping[str, Any]) -> int:
    """Run `update_sql`; the number of rows changed."""
    with connection.cursor() as cursor:
        cursor.execute(*update_sql(model, pk, values))
        return int(cursor.rowcount)
