"""Beat task for phones: messages handed out that no phone ever reported on."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task

from messaging.dispatch import flag_stale_dispatches as flag
from smsgate.celery import register_periodic_task


# The name predates the phones app; beat schedules stored in the database refer to it.
@shared_task(name="devices.flag_stale_dispatches")
def flag_stale_dispatches() -> dict[str, int]:
    """Dispatched messages with no report after SMSGATE_DISPATCH_TIMEOUT are flagged stale."""
    return {"stale": flag()}


register_periodic_task(
    "flag-stale-dispatches", "devices.flag_stale_dispatches", timedelta(minutes=5)
)
