"""Tasks are re-queued when a worker dies; one that keeps killing workers is dropped."""

from smsgate.celery import MAX_STARTS_PER_TASK, app

calls: list[int] = []


@app.task(name="tests.record_call")
def record_call() -> int:
    calls.append(1)
    return len(calls)


def _start_as_worker(task_id: str) -> object:
    record_call.push_request(id=task_id, is_eager=False)
    try:
        return record_call()
    finally:
        record_call.pop_request()


def test_a_redelivered_task_runs_until_the_cap_then_is_dropped() -> None:
    calls.clear()
    results = [_start_as_worker("poison-1") for _ in range(MAX_STARTS_PER_TASK + 2)]
    assert len(calls) == MAX_STARTS_PER_TASK
    assert results[-1] is None


def test_the_cap_is_per_task_id() -> None:
    calls.clear()
    for n in range(MAX_STARTS_PER_TASK + 1):
        _start_as_worker(f"healthy-{n}")
    assert len(calls) == MAX_STARTS_PER_TASK + 1


def test_eager_calls_are_not_counted() -> None:
    calls.clear()
    for _ in range(MAX_STARTS_PER_TASK + 1):
        record_call.apply()
    assert len(calls) == MAX_STARTS_PER_TASK + 1
