"""Triggers that replace a ConfigVersion token whenever a row of a cached table changes
(webhooks/versions.py). Shared by the migrations of webhooks and automation; the leading
underscore keeps Django from taking this module for a migration."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

VERSION_TABLE = "webhooks_configversion"
_PG_FUNCTION = "webhooks_config_version_bump"


@dataclass(frozen=True)
class Watched:
    table: str
    name: str  # the ConfigVersion row
    columns: tuple[str, ...]  # an UPDATE that changes none of these is not a change
    counted: str = ""  # a row the cache holds: a predicate on `{row}`; every row when empty

    def trigger(self, kind: str) -> str:
        return f"{self.table}_version_{kind}"

    def holds(self, row: str) -> str:
        return self.counted.format(row=row) if self.counted else "TRUE"


def _changed(watched: Watched, distinct: str) -> str:
    columns = " OR ".join(f"OLD.{c} {distinct} NEW.{c}" for c in watched.columns)
    return f"({watched.holds('OLD')} OR {watched.holds('NEW')}) AND ({columns})"


def _postgres(watched: Watched) -> list[str]:
    bump = f"EXECUTE FUNCTION {_PG_FUNCTION}('{watched.name}')"
    return [
        f"""CREATE OR REPLACE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO {VERSION_TABLE} (name, token)
            VALUES (TG_ARGV[0], md5(random()::text || clock_timestamp()::text))
            ON CONFLICT (name) DO UPDATE SET token = EXCLUDED.token;
            RETURN NULL;
        END $$""",
        f"CREATE TRIGGER {watched.trigger('insert')} AFTER INSERT ON {watched.table} "
        f"FOR EACH ROW WHEN ({watched.holds('NEW')}) {bump}",
        f"CREATE TRIGGER {watched.trigger('delete')} AFTER DELETE ON {watched.table} "
        f"FOR EACH ROW WHEN ({watched.holds('OLD')}) {bump}",
        f"CREATE TRIGGER {watched.trigger('update')} AFTER UPDATE ON {watched.table} "
        f"FOR EACH ROW WHEN ({_changed(watched, 'IS DISTINCT FROM')}) {bump}",
    ]


def _sqlite(watched: Watched) -> list[str]:
    bump = (
        f"BEGIN INSERT OR REPLACE INTO {VERSION_TABLE} (name, token) "
        f"VALUES ('{watched.name}', lower(hex(randomblob(16)))); END"
    )
    return [
        f"CREATE TRIGGER {watched.trigger('insert')} AFTER INSERT ON {watched.table} "
        f"FOR EACH ROW WHEN {watched.holds('NEW')} {bump}",
        f"CREATE TRIGGER {watched.trigger('delete')} AFTER DELETE ON {watched.table} "
        f"FOR EACH ROW WHEN {watched.holds('OLD')} {bump}",
        f"CREATE TRIGGER {watched.trigger('update')} AFTER UPDATE ON {watched.table} "
        f"FOR EACH ROW WHEN {_changed(watched, 'IS NOT')} {bump}",
    ]


def install(watched: Watched, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = _postgres(watched)
    elif vendor == "sqlite":
        statements = _sqlite(watched)
    else:
        raise NotImplementedError(f"no config version triggers for {vendor}")
    for statement in statements:
        schema_editor.execute(statement)
    schema_editor.execute(
        f"INSERT INTO {VERSION_TABLE} (name, token) VALUES (%s, %s)",
        (watched.name, uuid.uuid4().hex),
    )


def uninstall(watched: Watched, schema_editor: Any) -> None:
    postgres = schema_editor.connection.vendor == "postgresql"
    on = f" ON {watched.table}" if postgres else ""
    for kind in ("insert", "delete", "update"):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {watched.trigger(kind)}{on}")
    schema_editor.execute(f"DELETE FROM {VERSION_TABLE} WHERE name = %s", (watched.name,))


def uninstall_function(schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {_PG_FUNCTION}()")
