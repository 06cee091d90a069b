"""Query budgets per database backend.

On PostgreSQL the hot paths use set-based statements (a data-modifying WITH that writes the
message, its event and the conversation at once; UPDATE … RETURNING feeding an INSERT) that
SQLite cannot run, so there the same work takes the plain ORM statements. A budget names both
figures; CI runs on PostgreSQL and holds the production one.
"""

from __future__ import annotations

from django.conf import settings


def is_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def budget(postgres: int, *, sqlite: int) -> int:
    return postgres if is_postgres() else sqlite
