from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Field, Model
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response


class NewestFirstCursorPagination(CursorPagination):
    """`{"results": [...], "next": url|null}`; ids are ULIDs, so `-id` is newest first.

    A cursor is opaque to clients but decodes to a position that ends up in a WHERE clause, so
    a cursor that was tampered with (not ours, or a position the ordering field cannot hold)
    is a 400 naming `cursor`, never a database error.
    """

    ordering: Any = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500
    invalid_cursor_message = "This cursor is not valid; use the `next` URL of a previous page."

    _model: type[Model] | None = None

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        self._model = getattr(queryset, "model", None)
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({"cursor": [self.invalid_cursor_message]}) from None
        if cursor is not None and cursor.position is not None:
            self._check_position(str(cursor.position))
        return cursor

    def _check_position(self, position: str) -> None:
        ordering = self.ordering if isinstance(self.ordering, str) else self.ordering[0]
        if "\x00" in position or len(position) > 100 or self._model is None:
            raise ValidationError({"cursor": [self.invalid_cursor_message]})
        try:
            field = self._model._meta.get_field(ordering.lstrip("-"))
            if not isinstance(field, Field):
                raise FieldDoesNotExist(ordering)
            field.to_python(position)
        except (FieldDoesNotExist, DjangoValidationError):
            raise ValidationError({"cursor": [self.invalid_cursor_message]}) from None

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "nullable": True, "format": "uri"},
            },
        }


class RecentActivityCursorPagination(NewestFirstCursorPagination):
    """Conversations with the latest activity first (the inbox order); ties by id."""

    ordering = ("-updated_at", "-id")
