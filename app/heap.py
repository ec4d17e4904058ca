"""Keep Python's garbage collector off the GUI thread's back while models run.

CPython's full (oldest-generation) collection walks every tracked object. Once torch, pyqtgraph
and a model family are imported that is millions of objects and 0.2 to 0.6 s on a busy CPU, and it
runs in whichever thread happens to allocate when it is due: often the GUI thread, in the middle of
a live run (the imports' own objects make it due several times in the first minute). After the
heavy imports, ``settle_heap`` collects once and freezes what is left (``gc.freeze``): those objects
are never walked again, so later collections only see what the session allocated since.

The workbench turns it on (``app.main.run``); tests and programs that embed the widgets keep
Python's default (a frozen object is never collected, which suits a session's long-lived
window, not a test that builds and drops hundreds of them).
"""
from __future__ import annotations

import gc

MIN_NEW_OBJECTS = 50_000
_enabled = False


def enable(on: bool = True) -> None:
    global _enabled
    _enabled = on


def settle_heap() -> bool:
    """When enabled: collect, then move every surviving object to the permanent generation. Call
    it when the user already waits (a wait cursor while a panel that imports torch is built).
    Nothing is done when few objects came since the last call. Returns True when it froze."""
    if not _enabled:
        return False
    young = len(gc.get_objects())  # the objects not frozen yet
    if young < max(MIN_NEW_OBJECTS, 0.25 * gc.get_freeze_count()):
        return False
    gc.collect()
    gc.freeze()
    return True
