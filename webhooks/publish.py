"""Telling the broker a delivery is due: after commit, batched, robust to a broker that is down
(the beat sweep publishes what was lost, webhooks/delivery.py `requeue_lost_deliveries`).

Tasks are published by name: `webhooks.tasks` defines them and imports the modules that
publish, so importing the task here would make a loop.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from smsgate.batch import batch_collect
from smsgate.celery import app

# One delivery (a retry on its schedule); a batch of them (everything published at once).
DELIVER_TASK = "webhooks.deliver_webhook"
DELIVER_BATCH_TASK = "webhooks.deliver_webhooks"


def publish(delivery_ids: list[str]) -> None:
    # SMSGATE_WEBHOOKS_BATCH_SIZE deliveries per message: a worker claims, sends and records
    # them together (webhooks/delivery.py), so a task and two commits serve the whole batch
    # instead of each delivery. One broker connection for all the messages rather than one
    # checkout per message, and one pipelined round trip to Redis per 1,000 commands
    # (kombu's publish batch) rather than one per message.
    size = max(1, int(settings.SMSGATE_WEBHOOKS_BATCH_SIZE))
    chunks = [
        list(delivery_ids[start : start + size]) for start in range(0, len(delivery_ids), size)
    ]
    if len(chunks) == 1:
        # One message (an inbound SMS's endpoints): a pipeline to set up and flush would cost
        # more than the single push it batches.
        app.send_task(DELIVER_BATCH_TASK, args=(chunks[0],))
        return
    with app.producer_or_acquire() as producer, producer.batch():
        for chunk in chunks:
            app.send_task(DELIVER_BATCH_TASK, args=(chunk,), producer=producer)


def _publish_after_commit(delivery_ids: list[str]) -> None:
    # robust: a broker that is down must not turn a committed inbound message into an error;
    # the beat sweep publishes these deliveries later. A named function, not a partial: Django
    # logs a robust callback's failure by its __qualname__, which a partial lacks (that turned
    # the logged failure into a 500 after commit).
    def publish_deliveries() -> None:
        publish(delivery_ids)

    transaction.on_commit(publish_deliveries, robust=True)


def enqueue_after_commit(delivery_ids: list[str]) -> None:
    if not delivery_ids:
        return
    # Within a batch of inbound messages, published once for the whole batch.
    batch_collect("webhooks.publish", delivery_ids, _publish_after_commit)


def enqueue_later(delivery_id: str, countdown: float) -> None:
    def publish() -> None:
        app.send_task(DELIVER_TASK, args=[delivery_id], countdown=countdown)

    transaction.on_commit(publish, robust=True)
