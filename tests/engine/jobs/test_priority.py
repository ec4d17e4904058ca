"""A job's worker thread gives the GUI thread the CPU; a job run in-line leaves the program alone."""
import os
import sys
import threading

import pytest

from engine.jobs.priority import GUI_NICENESS, lower_thread_priority, yield_cpu_to_gui

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@linux
def test_a_worker_thread_is_niced_and_the_main_thread_is_not():
    before = _nice()
    assert yield_cpu_to_gui() is False and _nice() == before  # a job run in-line: nothing happens
    seen = {}

    def worker():
        seen["ok"] = yield_cpu_to_gui()
        seen["nice"] = _nice()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == {"ok": True, "nice": max(before, GUI_NICENESS)}
    assert _nice() == before


@linux
def test_lowering_never_raises_priority_and_does_not_accumulate():
    seen = {}

    def worker():
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, 7)  # raising nice needs no privilege
        lower_thread_priority(5)
        lower_thread_priority(5)
        seen["nice"] = _nice()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["nice"] == max(7, os.getpriority(os.PRIO_PROCESS, 0))
    assert lower_thread_priority(0) is False and lower_thread_priority(None) is False
