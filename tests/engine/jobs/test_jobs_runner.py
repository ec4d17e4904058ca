"""A job is a generator; the runner drives it on a thread and reports how it ended."""
import threading
import time

import pytest

from engine.jobs import (
    CancelToken,
    Job,
    JobCancelled,
    JobRunner,
    Log,
    Metrics,
    Progress,
    run_job_sync,
)


def counting(token, n=5, sleep=0.0):
    for i in range(n):
        if sleep:
            time.sleep(sleep)
        yield Progress(i + 1, n, f"step {i + 1}")
    yield Metrics({"loss": 0.5}, step=n)
    return {"steps": n}


def endless(token, record):
    """Yields forever; only cancellation ends it. `record` tracks steps and cleanup."""
    try:
        step = 0
        while True:
            step += 1
            record["steps"] = step
            yield Progress(step)
    finally:
        record["cleaned_up"] = True


def failing(token):
    yield Log("about to fail")
    raise ValueError("bad pixel in image.png")


def test_finished_job_returns_result_and_delivers_every_event_on_worker_thread():
    events, threads = [], set()

    def on_event(event):
        events.append(event)
        threads.add(threading.current_thread())

    runner = JobRunner(Job("count", counting, n=4), on_event=on_event)
    assert runner.state == "pending" and runner.outcome is None
    runner.start()
    outcome = runner.wait(timeout=10)
    assert outcome.state == "finished" and runner.state == "finished"
    assert outcome.result == {"steps": 4}
    assert outcome.events == 5
    assert [e.step for e in events if isinstance(e, Progress)] == [1, 2, 3, 4]
    assert isinstance(events[-1], Metrics)
    assert threads and threading.main_thread() not in threads
    assert runner.outcome is outcome


def test_cancel_takes_effect_at_the_next_yield():
    record = {}
    seen = []

    def on_event(event):
        seen.append(event.step)
        if event.step == 5:
            runner.cancel()

    runner = JobRunner(Job("endless", endless, record=record), on_event=on_event)
    runner.start()
    outcome = runner.wait(timeout=10)
    assert outcome.state == "cancelled" and runner.state == "cancelled"
    assert seen == [1, 2, 3, 4, 5]  # not one step more after the cancel
    assert record["steps"] == 5
    assert record["cleaned_up"] is True  # the generator was closed, its finally ran


def test_cancel_from_another_thread_stops_a_running_job_quickly():
    def slow_endless(token):
        while True:
            time.sleep(0.005)
            yield Progress(0)

    runner = JobRunner(Job("slow", slow_endless)).start()
    time.sleep(0.05)
    assert runner.state == "running"
    t0 = time.perf_counter()
    runner.cancel()
    outcome = runner.wait(timeout=5)
    assert outcome.state == "cancelled"
    assert time.perf_counter() - t0 < 1.0


def test_job_raising_jobcancelled_itself_is_cancelled():
    def inner_check(token):
        yield Progress(1)
        token.cancel()
        token.raise_if_cancelled()  # e.g. inside a long inner loop between yields
        yield Progress(2)

    outcome = JobRunner(Job("inner", inner_check)).start().wait(10)
    assert outcome.state == "cancelled"


def test_failure_is_caught_with_message_and_full_traceback():
    outcome = JobRunner(Job("fail", failing)).start().wait(10)
    assert outcome.state == "failed"
    assert outcome.error == "ValueError: bad pixel in image.png"
    assert "Traceback" in outcome.traceback
    assert "in failing" in outcome.traceback  # points at the job's own frame
    assert outcome.events == 1


def test_error_in_on_event_fails_the_job_instead_of_killing_the_thread_silently():
    def bad_callback(event):
        raise RuntimeError("view exploded")

    outcome = JobRunner(Job("count", counting), on_event=bad_callback).start().wait(10)
    assert outcome.state == "failed" and "view exploded" in outcome.error


def test_cancel_before_start_ends_without_running():
    ran = []

    def job(token):
        ran.append(True)
        yield Progress(1)

    runner = JobRunner(Job("never", job))
    runner.cancel()
    assert runner.state == "cancelled"
    runner.start()  # a late start does not resurrect it
    assert runner.wait(1).state == "cancelled" and runner.state == "cancelled"
    assert not ran


def test_start_twice_is_refused():
    runner = JobRunner(Job("count", counting)).start()
    with pytest.raises(RuntimeError, match="already started"):
        runner.start()
    runner.wait(10)


def test_sync_runner_has_the_same_semantics_on_the_current_thread():
    threads = set()
    outcome = run_job_sync(Job("count", counting, n=3), on_event=lambda e: threads.add(threading.current_thread()))
    assert outcome.state == "finished" and outcome.result == {"steps": 3}
    assert threads == {threading.current_thread()}

    failed = run_job_sync(Job("fail", failing))
    assert failed.state == "failed" and "bad pixel" in failed.error

    record = {}
    job = Job("endless", endless, record=record)
    cancelled = run_job_sync(job, on_event=lambda e: e.step == 3 and job.token.cancel())
    assert cancelled.state == "cancelled" and record["steps"] == 3


def test_plain_function_job_returns_its_value():
    assert run_job_sync(Job("plain", lambda token, x: x * 2, x=21)).result == 42


def test_token_basics():
    token = CancelToken()
    token.raise_if_cancelled()
    token.cancel()
    assert token.cancelled
    with pytest.raises(JobCancelled):
        token.raise_if_cancelled()
