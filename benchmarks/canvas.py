"""Canvas speed: repaint with 10k polygons, dragging, loading, next image, a 40k x 40k image.

    python -m benchmarks.canvas            # prints one JSON object on stdout

Offscreen, 1,600 x 1,000 viewport. Setup (not timed) writes an 8,000 x 8,000 JPEG and a project
with 10,000 polygons of 20 vertices (radius 10-60 px), a 20,000-image project, and once a
40,000 x 40,000 RGB strip TIFF (4.8 GB, streamed, cached in $VISIONBENCH_BENCH_CACHE or
~/.cache/visionbench-bench). The 40k part runs in a subprocess so its peak RSS is its own.

Render figures are full repaints of a new view (the cached frame never matches) with that view's
image tiles already decoded; `*_cold` figures are the very first frame at each view (tiles still
being decoded in the background, the overview shown in their place; shape rasters being built).
`load_10k_polygons_canvas_cpu_s` is process CPU (the image decode thread included);
`load_10k_polygons_canvas_gui_cpu_s` is the GUI thread's share: what the user waits for.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

VIEW_W, VIEW_H = 1600, 1000
BIG = 8000
N_POLY = 10_000
N_IMAGES = 20_000
HUGE = 40_000


def pct(values, q) -> float:
    return round(float(np.percentile(values, q)), 2)


def app_and_canvas():
    from PySide6.QtWidgets import QApplication

    from app.canvas import Canvas

    app = QApplication.instance() or QApplication([])
    canvas = Canvas()
    canvas.resize(VIEW_W, VIEW_H)
    canvas.show()
    return app, canvas


def pump(app, canvas, until, timeout=60.0) -> bool:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        app.processEvents()
        if until():
            return True
        time.sleep(0.002)
    return False


def make_big_project(folder: Path):
    import cv2

    from engine.annotations.model import Annotation, Polygon
    from engine.annotations.store import ProjectStore

    yy, xx = np.mgrid[0:BIG:8, 0:BIG:8].astype(np.float32)
    small = np.stack([128 + 100 * np.sin(xx / 300), 128 + 100 * np.cos(yy / 200), (xx + yy) / 64 % 255], 2)
    img = cv2.resize(small.astype(np.uint8), (BIG, BIG), interpolation=cv2.INTER_LINEAR)
    path = folder / "big.jpg"
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    del img
    store = ProjectStore.create(folder / "big.vbproj")
    rec = store.add_image(path, BIG, BIG)
    cats = [store.add_category(n) for n in ("cell", "nucleus", "debris", "other")]
    rng = np.random.default_rng(0)
    ang = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    anns = []
    for i in range(N_POLY):
        cx, cy = rng.uniform(60, BIG - 60, 2)
        r = rng.uniform(10, 60) * rng.uniform(0.75, 1.0, 20)
        pts = tuple(zip((cx + r * np.cos(ang)).round(2).tolist(), (cy + r * np.sin(ang)).round(2).tolist()))
        anns.append(Annotation(rec.id, cats[i % 4].id, Polygon(pts)))
    store.bulk_insert_annotations(anns)
    return store, rec


def bench_big(out: dict, folder: Path) -> None:
    store, rec = make_big_project(folder)
    app, canvas = app_and_canvas()
    canvas.set_cache_dir(folder / "cache")
    pump(app, canvas, lambda: False, 0.2)

    t0 = time.perf_counter()
    anns = store.annotations(rec.id)
    t_read, c_read, g_read = time.perf_counter(), time.process_time(), time.thread_time()
    canvas.load(rec, store.image_path(rec), anns, store.categories())
    canvas.repaint()
    out["load_10k_polygons_s"] = round(time.perf_counter() - t0, 3)
    out["load_10k_polygons_canvas_cpu_s"] = round(time.process_time() - c_read, 3)  # + the decode thread
    out["load_10k_polygons_canvas_gui_cpu_s"] = round(time.thread_time() - g_read, 3)  # GUI thread only
    out["load_10k_polygons_store_read_s"] = round(t_read - t0, 3)
    out["load_10k_polygons_canvas_s"] = round(time.perf_counter() - t_read, 3)
    pump(app, canvas, lambda: canvas.image_layer.overview is not None, 30)
    out["load_10k_polygons_image_overview_s"] = round(time.perf_counter() - t0, 3)
    pump(app, canvas, lambda: canvas.image_layer.ready, 60)
    out["load_10k_polygons_image_decoded_s"] = round(time.perf_counter() - t0, 3)

    def settle():
        canvas.repaint()
        pump(app, canvas, lambda: canvas.image_layer.pending_tiles() == 0 and not canvas.shapes.build_pending(), 30)

    cpu = {"warm": [], "smooth": []}

    def timed_views(views):
        cold, warm = [], []
        for s, cx, cy in views:
            canvas._set_view(s, VIEW_W / 2 - cx * s, VIEW_H / 2 - cy * s)
            t = time.perf_counter()
            canvas.repaint()
            cold.append((time.perf_counter() - t) * 1e3)
            settle()
            canvas._smooth = False  # the frame a moving view gets
            canvas._frame = None  # force the full re-render of this view, tiles now decoded
            canvas.shapes._vector_key = None  # ... shapes included (a moving view never reuses them)
            t, c = time.perf_counter(), time.process_time()
            canvas.repaint()
            warm.append((time.perf_counter() - t) * 1e3)
            cpu["warm"].append((time.process_time() - c) * 1e3)
            canvas._smooth = True  # the refined frame once the view rests
            c = time.process_time()
            canvas.repaint()
            cpu["smooth"].append((time.process_time() - c) * 1e3)
        return cold, warm

    canvas.fit()
    fit = canvas.zoom()
    zooms = [fit * (1.0 / fit) ** (i / 19) for i in range(20)]
    cold_z, warm_z = timed_views([(s, BIG / 2, BIG / 2) for s in zooms])
    rng = np.random.default_rng(1)
    pans = [(1.0, *rng.uniform(800, BIG - 800, 2)) for _ in range(20)]
    cold_p, warm_p = timed_views(pans)
    warm, cold = warm_z + warm_p, cold_z + cold_p
    out["render_ms_p50_10k_polygons"] = pct(warm, 50)
    out["render_ms_max_10k_polygons"] = round(max(warm), 2)
    out["render_ms_p50_zoom_levels"] = pct(warm_z, 50)
    out["render_ms_p50_pan_1to1"] = pct(warm_p, 50)
    out["render_cpu_ms_p50"] = pct(cpu["warm"], 50)
    out["render_cpu_ms_max"] = round(max(cpu["warm"]), 2)
    out["render_smooth_refine_cpu_ms_p50"] = pct(cpu["smooth"], 50)
    out["render_ms_p50_cold"] = pct(cold, 50)
    out["render_ms_max_cold"] = round(max(cold), 2)

    out["drag_ms_p50_10k_polygons"], out["drag_ms_max_10k_polygons"], out["drag_cpu_ms_p50"] = \
        drag_one(app, canvas, fit)
    out["drag_ms_p50_10k_polygons_1to1"], _, out["drag_cpu_ms_p50_1to1"] = drag_one(app, canvas, 1.0)
    out["load_avg_1min"] = round(os.getloadavg()[0], 2)  # this machine is shared: wall times inflate
    canvas.shutdown()
    canvas.close()
    store.close()


def drag_one(app, canvas, scale):
    """Select the polygon nearest the view centre and drag it 40 steps with mouse events.

    Returns (p50, max, CPU p50) ms per step, a step being one move event plus the repaint it causes.
    """
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from engine.annotations.geometry import bounds

    canvas._set_view(scale, VIEW_W / 2 - BIG / 2 * scale, VIEW_H / 2 - BIG / 2 * scale)
    canvas.repaint()
    centre = np.array([BIG / 2, BIG / 2])
    best = min(canvas.shapes.anns.values(),
               key=lambda a: np.hypot(*(np.array(bounds(a.geometry)).reshape(2, 2).mean(0) - centre)))
    cx, cy = np.array(bounds(best.geometry)).reshape(2, 2).mean(0)
    canvas.select([best.id])
    canvas.repaint()

    def send(kind, pos, buttons):
        btn = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
        ev = QMouseEvent(kind, pos, canvas.mapToGlobal(pos), btn, buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(canvas, ev)

    start = canvas.map_from_image(cx, cy)
    send(QEvent.Type.MouseButtonPress, start, Qt.MouseButton.LeftButton)
    times, cpu = [], []
    for i in range(1, 41):
        pos = QPointF(start.x() + 3 * i, start.y() + 2 * i)
        t, c = time.perf_counter(), time.process_time()
        send(QEvent.Type.MouseMove, pos, Qt.MouseButton.LeftButton)
        canvas.repaint()
        times.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
    send(QEvent.Type.MouseButtonRelease, pos, Qt.MouseButton.NoButton)
    app.processEvents()
    return pct(times, 50), round(max(times), 2), pct(cpu, 50)


def bench_next_image(out: dict, folder: Path) -> None:
    import cv2

    from engine.annotations.model import Annotation, Box
    from engine.annotations.store import ProjectStore

    src = folder / "img_00000.png"
    cv2.imwrite(str(src), np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8))
    store = ProjectStore.create(folder / "many.vbproj")
    cat = store.add_category("thing")
    recs = []
    with store.transaction():
        for i in range(N_IMAGES):
            p = folder / f"img_{i:05d}.png"
            if i:
                os.link(src, p)  # the files can be small and alike; hard links keep set-up fast
            recs.append(store.add_image(p, 640, 480))
    rng = np.random.default_rng(2)
    anns = []
    for r in recs:
        for _ in range(10):
            x, y = rng.uniform(0, 600), rng.uniform(0, 440)
            anns.append(Annotation(r.id, cat.id, Box(x, y, x + 40, y + 40)))
    store.bulk_insert_annotations(anns)
    app, canvas = app_and_canvas()
    ids = [r.id for r in recs[10_000:10_021]]
    first_frame, with_pixels = [], []
    for k, image_id in enumerate(ids):
        t = time.perf_counter()
        rec = store.image(image_id)
        canvas.load(rec, store.image_path(rec), store.annotations(image_id), store.categories())
        canvas.repaint()
        t1 = time.perf_counter()
        pump(app, canvas, lambda: canvas.image_layer.ready, 10)
        canvas.repaint()
        pump(app, canvas, lambda: canvas.image_layer.pending_tiles() == 0, 10)
        canvas.repaint()
        t2 = time.perf_counter()
        if k:  # the first one pays for imports and thread start-up
            first_frame.append((t1 - t) * 1e3)
            with_pixels.append((t2 - t) * 1e3)
    out["next_image_ms_p50_20k_project"] = pct(first_frame, 50)
    out["next_image_with_pixels_ms_p50_20k_project"] = pct(with_pixels, 50)
    canvas.shutdown()
    canvas.close()
    store.close()


def huge_tiff(cache: Path) -> Path:
    """A 40,000 x 40,000 RGB uint8 strip TIFF, written in row blocks (bounded memory), once."""
    path = cache / "huge_40000.tif"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    code = f"""
import numpy as np, tifffile
N = {HUGE}
mm = tifffile.memmap({str(path) + '.part'!r}, shape=(N, N, 3), dtype=np.uint8, photometric='rgb')
x = np.arange(N)
for y0 in range(0, N, 500):
    y = np.arange(y0, min(N, y0 + 500))[:, None]
    mm[y0:y0 + len(y), :, 0] = (x[None] // 40 + y // 40) % 256
    mm[y0:y0 + len(y), :, 1] = (x[None] // 157) % 256
    mm[y0:y0 + len(y), :, 2] = (y // 157) % 256
    mm.flush()
del mm
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    os.replace(str(path) + ".part", path)
    return path


def peak_rss_mb() -> float:
    """VmHWM of this process image. (ru_maxrss would include the parent's size at fork: Linux
    carries the pre-exec high-water mark over exec.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_mb() -> float:
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


def bench_huge_child(path: Path, cache: Path) -> dict:
    from engine.annotations.model import Category, ImageRecord

    out = {}
    app, canvas = app_and_canvas()
    canvas.set_cache_dir(cache)
    pump(app, canvas, lambda: False, 0.2)
    rec = ImageRecord(1, path.name, HUGE, HUGE)
    t0 = time.perf_counter()
    canvas.load(rec, path, [], [Category(1, "thing", "#ff0000")])
    pump(app, canvas, lambda: canvas.image_layer.overview is not None or bool(canvas.message_text()), 60)
    canvas.repaint()
    out["open_40k_image_first_view_s"] = round(time.perf_counter() - t0, 3)
    out["rss_mb_after_first_view"] = rss_mb()
    out["open_40k_image_message"] = canvas.message_text()
    canvas.zoom_to(1.0)
    t1 = time.perf_counter()
    canvas.repaint()
    pump(app, canvas, lambda: canvas.image_layer.pending_tiles() == 0, 60)
    canvas.repaint()
    out["open_40k_full_res_tiles_at_1to1_s"] = round(time.perf_counter() - t1, 3)
    out["rss_mb_after_1to1_tiles"] = rss_mb()
    for _ in range(5):  # pan around while the background build runs
        canvas.pan_by(-700, -450)
        canvas.repaint()
        pump(app, canvas, lambda: canvas.image_layer.pending_tiles() == 0, 60)
    pump(app, canvas, lambda: canvas.image_layer.ready, 15)  # let the level build run a while
    out["open_40k_levels_built_within_15s"] = bool(canvas.image_layer.ready)
    out["rss_mb_after_panning_and_building"] = rss_mb()
    canvas.shutdown()
    out["peak_rss_mb_40k_image"] = peak_rss_mb()
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--huge-child":
        print(json.dumps(bench_huge_child(Path(sys.argv[2]), Path(sys.argv[3]))))
        return
    out: dict = {"viewport": [VIEW_W, VIEW_H], "image_px": BIG, "polygons": N_POLY}
    with tempfile.TemporaryDirectory(prefix="vb-canvas-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "a").mkdir()
        (tmp / "b").mkdir()
        bench_big(out, tmp / "a")
        bench_next_image(out, tmp / "b")
        cache = Path(os.environ.get("VISIONBENCH_BENCH_CACHE", Path.home() / ".cache" / "visionbench-bench"))
        path = huge_tiff(cache)
        res = subprocess.run([sys.executable, "-m", "benchmarks.canvas", "--huge-child", str(path), str(tmp / "pyr")],
                             capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        try:
            out.update(json.loads(res.stdout.strip().splitlines()[-1]))
        except Exception:  # noqa: BLE001 - the child's output is reported whatever it is
            out["open_40k_error"] = (res.stderr or res.stdout)[-2000:]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
