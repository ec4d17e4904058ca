"""Thread priority of background work: the one place a worker thread gives the GUI thread the CPU.

Qt-free and torch-free. Linux gives every thread its own nice value; elsewhere these are no-ops.
"""
from __future__ import annotations

import os
import threading

__all__ = ["GUI_NICENESS", "lower_thread_priority", "yield_cpu_to_gui"]

GUI_NICENESS = 5  # at nice 5 the scheduler prefers the GUI thread (nice 0) when both want a core


def lower_thread_priority(niceness: int | None) -> bool:
    """Make the calling thread at least ``niceness`` nice. Returns False where unsupported.

    Never lowers a higher inherited value (as root an absolute set would give a thread started
    from an already-niced one MORE priority) and never accumulates when a job runs on the same
    thread again and again (tests, CLI).
    """
    if not niceness or niceness < 0:
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, max(os.getpriority(os.PRIO_PROCESS, tid), int(niceness))))
        return True
    except (AttributeError, OSError):
        return False


def yield_cpu_to_gui(niceness: int = GUI_NICENESS) -> bool:
    """``lower_thread_priority`` for a job's worker thread; nothing on the main thread, where a job
    run in-line (tests, scripts, the CLI) would renice the whole program. The worker thread ends
    with its job, so the priority goes with it."""
    if threading.current_thread() is threading.main_thread():
        return False
    return lower_thread_priority(niceness)
