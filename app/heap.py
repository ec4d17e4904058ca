"""Keep Python's garbage collector off the GUI thread's back while models run.

CPython's full (oldest-generation) collection walks every tracked object. Once torch, pyqtgraph
and a model family are imported that is millions of objects and 0.2 to 0.6 s on a busy CPU, and it
runs in whichever thread happens to allocate when it is due: often the GUI thread, in the middle of
a live run (the imports' own objects make it due several times in the first minute). After the
heavy imports, ``settle_heap`` collects once and freezes what is left (``gc.freeze``): those objects
are never walked again, so later collections only see what the session allocated since.

A job imports its family's modules on its worker thread after that, and those objects would be
walked by every full collection of the run (0.1 to 0.3 s each, the GUI waiting for the GIL); so
``freeze_new`` freezes again, without collecting, when a job's first step is done.

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


def freeze_new() -> bool:
    """When enabled: freeze the objects made since the last freeze, without a collection (O(1):
    fit for the GUI thread, at the price of keeping whatever cyclic garbage exists right then,
    which the frequent young collections keep small). Returns True when it froze."""
    if not _enabled:
        return False
    gc.freeze()
    return True
