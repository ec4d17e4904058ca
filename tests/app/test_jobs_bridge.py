"""Engine events reach the GUI as throttled Qt signals on the GUI thread."""
import time

import pytest
from PySide6.QtCore import QThread

from app.jobs_bridge import JobBridge
from engine.jobs import Job, Log, Metrics, Preview, Progress


@pytest.fixture
def bridge(qtbot):
    b = JobBridge()
    yield b
    assert b.shutdown(timeout=10), "a job thread outlived the test"


def burst(token, n_progress=10_000, n_metrics=0):
    for i in range(n_progress):
        yield Progress(i + 1, n_progress)
    for i in range(n_metrics):
        yield Metrics({"loss": 1.0 / (i + 1)}, step=i)
    return "done"


def endless(token):
    while True:
        time.sleep(0.002)
        yield Progress(0)


def test_finished_signal_carries_the_outcome(qtbot, bridge):
    with qtbot.waitSignal(bridge.finished, timeout=10_000) as blocker:
        job_id = bridge.submit(Job("burst", burst, n_progress=10))
    assert blocker.args[0] == job_id
    assert blocker.args[1].state == "finished" and blocker.args[1].result == "done"
    [info] = bridge.jobs()
    assert (info.job_id, info.name, info.state) == (job_id, "burst", "finished")
    assert info.progress == Progress(10, 10)


def test_signals_arrive_on_the_gui_thread_and_finished_comes_last(qtbot, bridge):
    received = []
    gui_thread = QThread.currentThread()

    def record(kind):
        def slot(job_id, event):
            assert QThread.currentThread() is gui_thread
            received.append((kind, event))

        return slot

    for name in ("progress", "metrics", "preview", "log", "finished"):
        getattr(bridge, name).connect(record(name))

    def mixed(token):
        yield Log("start")
        yield Progress(1, 2)
        yield Preview("heatmap", [[0.1]], step=1)
        yield Metrics({"loss": 0.3}, step=1)
        yield Progress(2, 2)
        return 7

    with qtbot.waitSignal(bridge.finished, timeout=10_000):
        bridge.submit(Job("mixed", mixed))
    kinds = [k for k, _ in received]
    assert kinds[-1] == "finished"
    assert {"progress", "metrics", "preview", "log"} <= set(kinds)
    assert received[-1][1].result == 7


def test_ten_thousand_progress_events_are_coalesced_but_every_metric_arrives(qtbot, bridge):
    progress, metrics = [], []
    bridge.progress.connect(lambda j, e: progress.append(e))
    bridge.metrics.connect(lambda j, e: metrics.append(e))
    with qtbot.waitSignal(bridge.finished, timeout=20_000):
        bridge.submit(Job("burst", burst, n_progress=10_000, n_metrics=300))
    assert 1 <= len(progress) < 500  # ~30 Hz: far fewer than 10,000
    assert progress[-1] == Progress(10_000, 10_000)  # the latest always wins
    assert [m.step for m in metrics] == list(range(300))  # all, in order: they feed curves


def test_one_flush_delivers_one_progress_and_the_latest_preview_per_name(qtbot):
    bridge = JobBridge(interval_ms=60_000)  # timer effectively off: we drain by hand
    progress, previews = [], []
    bridge.progress.connect(lambda j, e: progress.append(e))
    bridge.preview.connect(lambda j, e: previews.append(e))

    def job(token):
        for i in range(1000):
            yield Progress(i + 1, 1000)
            yield Preview("argmax", i)
            yield Preview("heatmap", -i)

    job_id = bridge.submit(Job("previews", job))
    bridge.runner(job_id).wait(10)
    bridge.flush()
    assert progress == [Progress(1000, 1000)]
    assert sorted((p.name, p.data) for p in previews) == [("argmax", 999), ("heatmap", -999)]
    assert bridge.shutdown()


def test_unexpected_yield_becomes_a_warning_log(qtbot, bridge):
    logs = []
    bridge.log.connect(lambda j, e: logs.append(e))

    def odd(token):
        yield "not an event"

    with qtbot.waitSignal(bridge.finished, timeout=10_000):
        bridge.submit(Job("odd", odd))
    assert logs and logs[0].level == "warning" and "not an event" in logs[0].text


def test_cancel_and_shutdown_leave_no_thread_behind(qtbot):
    bridge = JobBridge()
    a = bridge.submit(Job("a", endless))
    b = bridge.submit(Job("b", endless))
    with qtbot.waitSignal(bridge.finished, timeout=10_000) as blocker:
        bridge.cancel(a)
    assert blocker.args[0] == a and blocker.args[1].state == "cancelled"
    assert bridge.runner(b).state == "running"
    assert bridge.shutdown(timeout=10)
    assert bridge.runner(b).state == "cancelled"
    assert not any(bridge.runner(j)._thread.is_alive() for j in (a, b))
    with pytest.raises(RuntimeError, match="shut down"):
        bridge.submit(Job("late", endless))


def test_timer_stops_when_idle(qtbot, bridge):
    with qtbot.waitSignal(bridge.finished, timeout=10_000):
        bridge.submit(Job("burst", burst, n_progress=5))
    assert not bridge._timer.isActive()


def test_progress_reaches_the_widgets_a_few_times_a_second_and_the_last_one_before_finished(qtbot, bridge):
    """Each progress repaints progress bars and status lines: ~5 a second are enough; metrics are
    not thinned; a job's final progress comes before its `finished`."""
    from app.jobs_bridge import PROGRESS_INTERVAL_MS

    received = []
    bridge.progress.connect(lambda j, e: received.append(("progress", time.perf_counter(), e)))
    bridge.metrics.connect(lambda j, e: received.append(("metrics", time.perf_counter(), e)))
    bridge.finished.connect(lambda j, o: received.append(("finished", time.perf_counter(), o)))

    def steady(token, seconds=1.2):
        start, i = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            i += 1
            yield Progress(i, None)
            yield Metrics({"loss": 1.0 / i}, step=i)
            time.sleep(0.005)
        yield Progress(i + 1, i + 1)

    with qtbot.waitSignal(bridge.finished, timeout=20_000):
        bridge.submit(Job("steady", steady))
    progress = [(t, e) for kind, t, e in received if kind == "progress"]
    metrics = [e for kind, _, e in received if kind == "metrics"]
    times = [t for t, _ in progress][:-1]  # the final one comes with the job's end, whenever that is
    assert 2 <= len(progress) <= 1.2 / (PROGRESS_INTERVAL_MS / 1000) + 2
    assert all(b - a >= 0.9 * PROGRESS_INTERVAL_MS / 1000 for a, b in zip(times, times[1:]))
    assert [m.step for m in metrics] == list(range(1, len(metrics) + 1)) and len(metrics) > 50
    assert progress[-1][1].total is not None and progress[-1][1].step == progress[-1][1].total
    assert [kind for kind, _, _ in received][-1] == "finished"
