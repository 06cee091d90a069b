"""Webhook fan-out beside a slow receiver: does one slow endpoint hold the others up?

Every `SLOW_EVERY`th event also goes to an endpoint whose receiver takes `SLOW_SECONDS`
(bench/receiver.py: paths under `/slow`) to answer, within the request timeout. Deliveries are
published the way the product does (webhooks/publish.py), in event order, so batches mix fast
and slow deliveries. The figure is the fast endpoint's deliveries per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

SLOW_EVERY = 10
SLOW_SECONDS = 1.0


def fan_out_beside_slow_rate(
    count: int, fast_endpoint_id: str, receiver_port: int, stats: Callable[[int], dict[str, Any]]
) -> tuple[float, int]:
    from django.utils import timezone

    from webhooks.models import Delivery, Endpoint, Event, EventType
    from webhooks.publish import publish
    from webhooks.services import create_endpoint

    fast = Endpoint.objects.get(pk=fast_endpoint_id)
    slow, _ = create_endpoint(
        url=f"http://127.0.0.1:{receiver_port}/slow/hook",
        format="standard",
        events=["sms.cancelled"],
    )
    now = timezone.now()
    events = Event.objects.bulk_create(
        Event(type=EventType.DEVICE_ONLINE, data={"deviceId": "dev_bench", "n": i})
        for i in range(count)
    )
    rows: list[Delivery] = []
    for i, event in enumerate(events):
        targets = [fast, slow] if i % SLOW_EVERY == 0 else [fast]
        rows.extend(
            Delivery(
                event=event,
                endpoint=e,
                round_attempts=e.max_attempts,
                next_attempt_at=now,
                enqueued_at=now,
            )
            for e in targets
        )
    deliveries = Delivery.objects.bulk_create(rows)
    base = int(stats(receiver_port)["counts"].get("/hook/fan", 0))
    start_wall = time.time()
    publish([d.pk for d in deliveries])
    deadline = time.monotonic() + 600
    got = 0
    while time.monotonic() < deadline:
        found = stats(receiver_port)
        got = int(found["counts"].get("/hook/fan", 0)) - base
        if got >= count:
            return count / (float(found["fast_last_at"]) - start_wall), 0
        time.sleep(0.2)
    return got / (time.time() - start_wall), count - got
