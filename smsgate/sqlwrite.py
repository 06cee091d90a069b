"""Writes on the hot paths as SQL built once per process.

Django's insert and update compilers rebuild the same statement for every request: on an
inbound SMS they cost more CPU than PostgreSQL spent running the statements
(docs/performance.md). The statements here are the ones those compilers build for plain
values (no expressions), with the values prepared exactly as they prepare them (`pre_save`,
then `get_db_prep_save`), so what lands in the database is the same.

Only table and column names from the models are formatted into the SQL; every value is a
query parameter.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection
from django.db.models import AutoField, Field, Model


@functools.cache
def _insert_parts(
    model: type[Model], returning: bool
) -> tuple[list[Field[Any, Any]], str, str, str]:
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    # A database-generated id is left to the database, as the ORM does for a new row.
    fields = [f for f in model._meta.concrete_fields if not isinstance(f, AutoField)]
    head = f"INSERT INTO {table} ({', '.join(quote(str(f.column)) for f in fields)}) VALUES "  # noqa: S608
    row = f"({', '.join(['%s'] * len(fields))})"
    tail = ""
    if returning:
        tail = f" ON CONFLICT DO NOTHING RETURNING {table}.{quote(str(model._meta.pk.column))}"
    return fields, head, row, tail


def insert_sql(
    model: type[Model], objs: Sequence[Model], *, ignore_conflicts: bool = False
) -> tuple[str, tuple[Any, ...]]:
    """One INSERT of `objs` as SQL and parameters, to run alone or as a part of a WITH.

    `ignore_conflicts` adds ON CONFLICT DO NOTHING RETURNING the primary key, so the caller
    learns which rows were really inserted. The objects count as saved afterwards.
    """
    fields, head, row, tail = _insert_parts(model, ignore_conflicts)
    params: list[Any] = []
    for obj in objs:
        # As bulk_create: a related object set on the instance gives its id to the column.
        obj._prepare_related_fields_for_save(operation_name="bulk_create")  # type: ignore[attr-defined]
        params.extend(f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields)
        obj._state.adding = False
        obj._state.db = connection.alias
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


def update_by_pk(model: type[Model], pk: Any, values: Mapping[str, Any]) -> int:
    """UPDATE one row's fields to plain values (no expressions); the number of rows changed."""
    fields, sql = _update_sql(model, tuple(values))
    params = [
        f.get_db_prep_save(value, connection)
        for f, value in zip(fields, values.values(), strict=True)
    ]
    params.append(model._meta.pk.get_db_prep_value(pk, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)
