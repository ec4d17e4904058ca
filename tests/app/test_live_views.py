"""Live views: one pane per preview, drawn by its kind; class picker, colour map picker with a value
scale, argmax in the category palette; curves of every loss term and validation metric."""
import numpy as np
import pytest

from app.views.live_views import COLOR_MAPS, LiveViews, legend_html
from engine.jobs.events import Metrics, Preview
from engine.viz import previews as pv
from engine.viz.heatmaps import segmentation_preview


@pytest.fixture
def views(qtbot):
    v = LiveViews()
    v.resize(900, 600)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitExposed(v)
    return v


def _preview():
    """A 32x48 image: class 1 probable on the left half, class 2 on the right."""
    h, w = 32, 48
    image = np.full((h, w, 3), 100, np.uint8)
    probs = np.zeros((3, h, w), np.float32)
    probs[1, :, : w // 2] = 0.9
    probs[2, :, w // 2:] = 0.8
    probs[0] = 1.0 - probs[1] - probs[2]
    views = segmentation_preview(image, probs, ["disc", "square"], ["#e6194b", "#3cb44b"])
    heat, arg = views["heatmaps"], views["argmax"]
    return image, {"heatmaps": pv.heatmap("heatmaps", heat["probs"], heat["classes"], (0.0, 1.0)),
                   "argmax": pv.class_map("argmax", arg["image"], arg["class_map"], arg["palette"], arg["classes"])}


def _pixels(pane) -> np.ndarray:
    img = pane.graphics.grab().toImage()
    return np.array([[img.pixel(x, y) for x in range(0, img.width(), 4)] for y in range(0, img.height(), 4)])


def test_class_picker_shows_that_class_probability(views, qtbot):
    _, data = _preview()
    views.show_preview(data["heatmaps"])
    hv = views.heatmap
    assert [hv.class_combo.itemText(i) for i in range(hv.class_combo.count())] == ["background", "disc", "square"]
    assert hv.current_class() == "disc"  # starts on the first real class
    np.testing.assert_allclose(hv.item.image[:, :24], 0.9, atol=1e-3)
    np.testing.assert_allclose(hv.item.image[:, 24:], 0.0, atol=1e-3)
    hv.class_combo.setCurrentText("square")
    np.testing.assert_allclose(hv.item.image[:, 24:], 0.8, atol=1e-3)
    np.testing.assert_allclose(hv.item.image[:, :24], 0.0, atol=1e-3)
    # a new preview keeps the user's choice
    views.show_preview(data["heatmaps"])
    assert hv.current_class() == "square"


def test_colour_map_picker_recolours_the_heatmap_and_its_scale(views, qtbot):
    _, data = _preview()
    views.show_preview(data["heatmaps"])
    hv = views.heatmap
    assert hv.cmap_combo.currentText() == "viridis" and "grey" in COLOR_MAPS
    assert tuple(hv.color_bar.levels()) == (0.0, 1.0)  # probabilities: fixed 0..1 scale
    before = _pixels(hv)
    hv.set_color_map("grey")
    qtbot.wait(50)
    after = _pixels(hv)
    assert (before != after).mean() > 0.05
    # grey: the image item's look-up table maps 0 -> black and 1 -> white
    lut = hv.item.lut if not callable(hv.item.lut) else hv.item.lut()
    lut = np.asarray(lut)
    assert tuple(lut[0][:3]) == (0, 0, 0) and tuple(lut[-1][:3]) == (255, 255, 255)


def test_argmax_is_drawn_in_the_category_palette_with_a_legend(views):
    image, data = _preview()
    views.show_preview(data["argmax"])
    av = views.argmax
    av.alpha.setValue(100)  # opaque: the pixels are the palette colours themselves
    shown = av.item.image
    assert tuple(shown[5, 5]) == (0xE6, 0x19, 0x4B) and tuple(shown[5, 40]) == (0x3C, 0xB4, 0x4B)
    av.alpha.setValue(0)
    assert tuple(av.item.image[5, 5]) == (100, 100, 100)
    text = av.legend.text()
    assert "#e6194b" in text and "disc" in text and "#3cb44b" in text and "square" in text
    assert "background" not in text
    assert "&lt;b&gt;" in legend_html(["background", "<b>"], np.zeros((2, 3), np.uint8))  # names are escaped


def test_weight_map_and_curves(views):
    weight = np.ones((20, 30), np.float32)
    weight[10, 15] = 7.5
    views.show_preview(pv.heatmap("weight_map", weight, ["weight"], None, title="loss weight map"))
    assert views.weight_map.range_label.text() == "0 – 7.5"
    assert tuple(views.weight_map.color_bar.levels()) == (0.0, 7.5)
    assert views.weight_map.title.text() == "loss weight map" and not views.weight_map.class_combo.isVisible()
    for step in range(1, 5):
        views.add_metrics(Metrics({"loss": 1.0 / step, "loss_box": 0.5 / step, "lr": 0.01}, step))
    views.add_metrics(Metrics({"val_miou": 0.5, "val_dice": 0.6, "epoch": 1}, 4))
    xs, ys = views.curves.data("loss")
    assert xs == [1, 2, 3, 4] and ys[-1] == pytest.approx(0.25)
    assert views.curves.data("loss_box")[1][-1] == pytest.approx(0.125)  # every loss term has its curve
    assert views.curves.data("val_miou")[1] == [0.5] and views.curves.data("val_dice")[1] == [0.6]
    assert "lr" not in views.curves.lines and "epoch" not in views.curves.lines
    views.clear_curves()
    assert views.curves.series == {} and views.curves.lines == {}



def test_the_three_image_panes_share_a_narrow_dock_equally(qtbot):
    """In a ~640 px dock the heatmap's two combos must not squeeze the weight map to a stamp."""
    _, data = _preview()
    v = LiveViews()
    qtbot.addWidget(v)
    v.resize(620, 520)
    v.show()
    qtbot.waitExposed(v)
    v.show_preview(data["heatmaps"])
    v.show_preview(data["argmax"])
    v.show_preview(pv.heatmap("weight_map", np.ones((32, 48), np.float32), ["weight"]))
    qtbot.wait(50)
    widths = [v.heatmap.width(), v.argmax.width(), v.weight_map.width()]
    assert max(widths) - min(widths) <= 0.1 * max(widths), widths


def test_every_preview_kind_gets_a_view_without_family_code(views):
    """A family that yields previews of any kind is drawn with no GUI code of its own."""
    rng = np.random.default_rng(0)
    pictures = [rng.integers(0, 255, (20, 30, 3), dtype=np.uint8) for _ in range(3)]
    views.show_preview(pv.image("detections", pictures[0], title="detections on val image 7"))
    views.show_preview(pv.image_row("pair", pictures, ["input", "output", "target"]))
    views.show_preview(pv.matrix_grid("gram", [np.eye(4), np.ones((8, 8))], ["conv1", "conv2"]))
    views.show_preview(pv.scatter("embedding", rng.normal(size=(12, 2)), np.arange(12) % 3, ["a", "b", "c"]))
    views.show_preview(pv.curves("style loss", [1, 2, 3], {"conv1": [3, 2, 1], "conv2": [1, 1, 1]}))
    kinds = {name: type(view).__name__ for name, view in views.panes.items()}
    assert kinds == {"detections": "ImageView", "pair": "ImageRowView", "gram": "MatrixGridView",
                     "embedding": "ScatterView", "style loss": "SeriesView"}
    assert np.array_equal(views.pane("detections").item.image, pictures[0])
    assert views.pane("detections").title.text() == "detections on val image 7"
    row = views.pane("pair")
    assert row.item.image.shape == (20, 3 * 30 + 2 * 4, 3) and row.names.text() == "input  |  output  |  target"
    grid = views.pane("gram")
    assert grid.item.image.shape[0] == 8 and [grid.pick.itemText(i) for i in range(3)] == ["all", "conv1", "conv2"]
    grid.pick.setCurrentIndex(1)
    assert grid.item.image.shape[:2] == (4, 4)
    scatter = views.pane("embedding")
    colours = [scatter.points.points()[k].brush().color().name() for k in range(3)]
    assert len(set(colours)) == 3 and [e[0] for e in scatter.legend_entries()] == ["a", "b", "c"]
    assert len(views.pane("style loss").plot.listDataItems()) == 2
    assert not views.placeholder.isVisible()
    # the same name with another kind replaces its pane; clearing removes every pane
    views.show_preview(pv.heatmap("detections", np.ones((5, 5), np.float32)))
    assert type(views.pane("detections")).__name__ == "HeatmapView"
    views.clear_previews()
    assert views.panes == {}


def test_a_preview_of_an_unknown_kind_is_refused_in_the_engine():
    with pytest.raises(ValueError, match="kind 'hologram'"):
        Preview("x", {}, kind="hologram")


def test_a_validation_metric_beyond_0_to_1_widens_the_validation_plot(qtbot):
    from app.views.live_views import CurvesView
    from engine.jobs.events import Metrics

    view = CurvesView()
    qtbot.addWidget(view)
    view.add(Metrics({"val_l1": 0.05, "val_psnr": 31.0}, 10))
    view.add(Metrics({"val_l1": 0.04, "val_psnr": 33.0}, 20))
    view.val_plot.plotItem.vb.updateAutoRange()
    low, high = view.val_plot.plotItem.vb.viewRange()[1]
    assert low <= 0.05 and high >= 33.0


def test_the_scatter_colours_each_identity_apart_and_its_legend_hides_one(views):
    """Twelve identities: twelve colours, one legend entry each in the points' colour; a click on
    an entry hides that identity's points; a live update with the same identities keeps the legend."""
    rng = np.random.default_rng(1)
    names = [f"glyph {k}" for k in range(12)]
    labels = np.repeat(np.arange(12), 5)
    views.show_preview(pv.scatter("embedding", rng.normal(size=(60, 2)), labels, names))
    scatter = views.pane("embedding")
    brushes = [p.brush().color().name() for p in scatter.points.points()]
    assert len(brushes) == 60
    by_label = {int(k): {b for b, lab in zip(brushes, labels) if lab == k} for k in range(12)}
    assert all(len(c) == 1 for c in by_label.values()) and len(set().union(*by_label.values())) == 12
    entries = scatter.legend_entries()
    assert [e[0] for e in entries] == names and all(e[2] for e in entries)
    assert [e[1] for e in entries] == [next(iter(by_label[k])) for k in range(12)]  # legend colour = points'
    legend_text = scatter.legend.text()
    points = rng.normal(size=(60, 2))
    views.show_preview(pv.scatter("embedding", points, labels, names))
    assert scatter.legend.text() == legend_text
    np.testing.assert_allclose(scatter.label_points(3), points[labels == 3], rtol=1e-6)
    # every point lies inside the view
    (x0, x1), (y0, y1) = scatter.plot.getViewBox().viewRange()
    assert x0 <= points[:, 0].min() and points[:, 0].max() <= x1 and y0 <= points[:, 1].min() <= y1
    scatter.legend.linkActivated.emit("3")
    assert len(scatter.points.points()) == 55 and len(scatter.label_points(3)) == 0
    assert not scatter.legend_entries()[3][2] and "<s>glyph 3</s>" in scatter.legend.text()
    scatter.legend.linkActivated.emit("3")
    assert len(scatter.points.points()) == 60


def test_panes_laid_out_before_a_run_are_the_ones_its_previews_fill(views):
    views.prepare({"translations": "image_row", "D on generated": "heatmap", "D on real": "heatmap"})
    prepared = dict(views.panes)
    assert list(prepared) == ["translations", "D on generated", "D on real"]
    assert "waiting" in prepared["D on real"].title.text() and not views.placeholder.isVisible()
    views.show_preview(pv.heatmap("D on real", np.full((6, 6), 0.5, np.float32), ["P(real)"], (0.0, 1.0),
                                  title="D on the real image"))
    assert views.pane("D on real") is prepared["D on real"]
    assert views.pane("D on real").title.text() == "D on the real image"


def test_views_repaint_one_at_a_time_and_the_curves_at_most_at_their_period(views, qtbot):
    """A preview step that changes every pane: the data is there at once, the repaints come one
    per turn of the event loop, at least the pacer's gap apart."""
    from app.views.pacing import CURVES_PERIOD_MS, PAINT_GAP_MS

    rng = np.random.default_rng(2)
    for name in ("a", "b", "c"):
        views.show_preview(pv.image(name, rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)))
    views.add_metrics(Metrics({"loss": 1.0}, 1))
    panes = [views.pane(n) for n in "abc"]
    assert all(p.item.image is not None for p in panes)
    assert set(views.pacer.held()) == {*panes, views.curves}
    widgets = [*panes, views.curves]
    qtbot.waitUntil(lambda: all(w.updatesEnabled() for w in widgets), timeout=3000)
    times = sorted(views.pacer.released_at(w) for w in widgets)
    assert min(b - a for a, b in zip(times, times[1:])) >= PAINT_GAP_MS / 1000 - 0.002
    import time

    # metrics keep coming: the curves repaint no more often than their period
    start = time.perf_counter()
    repaints = []
    while time.perf_counter() - start < 1.0:
        views.add_metrics(Metrics({"loss": 0.5}, 2))
        qtbot.wait(5)
        if views.curves.updatesEnabled():
            repaints.append(time.perf_counter())
            views.add_metrics(Metrics({"loss": 0.4}, 3))
    assert 1 <= len(repaints) <= 1000 / CURVES_PERIOD_MS + 1
    views.pacer.release_all()
    assert not views.pacer.held() and all(p.updatesEnabled() for p in panes)
