"""The workbench freezes its long-lived heap once torch is in (app.heap), in a child process so the
test session's own collector is left as it is."""
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import gc
    import weakref
    from app import heap

    class Node:
        pass

    kept = [[k] for k in range(200_000)]          # long-lived objects, as imports leave them
    assert not heap.settle_heap()                 # off unless the workbench turned it on
    assert gc.get_freeze_count() == 0
    heap.enable()
    node = Node()
    node.me = node                                # garbage in a cycle: collected, not frozen
    gone = weakref.ref(node)
    del node
    assert heap.settle_heap() and gone() is None
    frozen = gc.get_freeze_count()
    assert frozen >= 200_000
    assert len(gc.get_objects()) < 0.25 * frozen  # a full collection no longer walks them
    assert not heap.settle_heap()                 # few new objects since: nothing to do
    more = [[k] for k in range(100_000)]
    assert heap.settle_heap() and gc.get_freeze_count() >= frozen + 100_000
    latest = [[k] for k in range(1000)]
    assert heap.freeze_new() and gc.get_freeze_count() >= frozen + 100_000 + 1000  # no threshold, no walk
    heap.enable(False)
    assert not heap.freeze_new()
    print("ok", len(kept), len(more), len(latest))
""")


def test_the_heap_is_frozen_once_enabled_and_only_when_it_grew():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")
