"""Live views: class picker, colour map picker with a value scale, argmax in the category palette."""
import numpy as np
import pytest

from app.views.live_views import COLOR_MAPS, LiveViews, legend_html
from engine.jobs.events import Metrics, Preview
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
    return image, segmentation_preview(image, probs, ["disc", "square"], ["#e6194b", "#3cb44b"])


def _pixels(pane) -> np.ndarray:
    img = pane.graphics.grab().toImage()
    return np.array([[img.pixel(x, y) for x in range(0, img.width(), 4)] for y in range(0, img.height(), 4)])


def test_class_picker_shows_that_class_probability(views, qtbot):
    _, data = _preview()
    views.show_preview(Preview("heatmaps", data["heatmaps"]))
    hv = views.heatmap
    assert [hv.class_combo.itemText(i) for i in range(hv.class_combo.count())] == ["background", "disc", "square"]
    assert hv.current_class() == "disc"  # starts on the first real class
    np.testing.assert_allclose(hv.item.image[:, :24], 0.9, atol=1e-3)
    np.testing.assert_allclose(hv.item.image[:, 24:], 0.0, atol=1e-3)
    hv.class_combo.setCurrentText("square")
    np.testing.assert_allclose(hv.item.image[:, 24:], 0.8, atol=1e-3)
    np.testing.assert_allclose(hv.item.image[:, :24], 0.0, atol=1e-3)
    # a new preview keeps the user's choice
    views.show_preview(Preview("heatmaps", data["heatmaps"]))
    assert hv.current_class() == "square"


def test_colour_map_picker_recolours_the_heatmap_and_its_scale(views, qtbot):
    _, data = _preview()
    views.show_preview(Preview("heatmaps", data["heatmaps"]))
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
    views.show_preview(Preview("argmax", data["argmax"]))
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
    views.show_preview(Preview("weight_map", {"image": np.zeros((20, 30, 3), np.uint8), "weight": weight}))
    assert views.weight_map.range_label.text() == "0 – 7.5"
    assert tuple(views.weight_map.color_bar.levels()) == (0.0, 7.5)
    for step in range(1, 5):
        views.add_metrics(Metrics({"loss": 1.0 / step}, step))
    views.add_metrics(Metrics({"val_miou": 0.5, "val_dice": 0.6, "epoch": 1}, 4))
    xs, ys = views.curves.loss_curve.getData()
    assert list(xs) == [1, 2, 3, 4] and ys[-1] == pytest.approx(0.25)
    assert list(views.curves.iou_curve.getData()[1]) == [0.5]
    views.clear_curves()
    assert views.curves.loss == [] and views.curves.val == []



def test_the_three_image_panes_share_a_narrow_dock_equally(qtbot):
    """In a ~640 px dock the heatmap's two combos must not squeeze the weight map to a stamp."""
    _, data = _preview()
    v = LiveViews()
    qtbot.addWidget(v)
    v.resize(620, 520)
    v.show()
    qtbot.waitExposed(v)
    v.show_preview(Preview("heatmaps", data["heatmaps"]))
    v.show_preview(Preview("argmax", data["argmax"]))
    v.show_preview(Preview("weight_map", {"image": data["argmax"]["image"], "weight": np.ones((32, 48), np.float32)}))
    qtbot.wait(50)
    widths = [v.heatmap.width(), v.argmax.width(), v.weight_map.width()]
    assert max(widths) - min(widths) <= 0.1 * max(widths), widths
