"""What every page shares: the navigation context and paging."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard import queries
from dashboard.access import is_admin

PAGE_SIZE = 50


def render_page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    section: str = "",
    status: int = 200,
) -> HttpResponse:
    page = {
        "section": section,
        "user_is_admin": is_admin(request.user),
        "unread_total": queries.unread_total(),
    }
    page.update(context or {})
    return render(request, template, page, status=status)


def paginate(request: HttpRequest, qs: QuerySet[Any]) -> Page[Any]:
    return Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))


def query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()
