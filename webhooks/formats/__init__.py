"""One module per webhook format, each exposing a `SPEC` (see `base.FormatSpec`)."""

from __future__ import annotations

from webhooks.formats import app, chat, email, form, slack, standard
from webhooks.formats.base import FormatSpec

FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (standard.SPEC, chat.SPEC, form.SPEC, slack.SPEC, email.SPEC, app.SPEC)
}


def get_format(name: str) -> FormatSpec:
    return FORMATS[name]
