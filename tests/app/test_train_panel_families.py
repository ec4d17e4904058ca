"""Every family in the Train panel: a throwaway family of each kind, registered from a test
module, appears with its own options, trains with its live views drawn by kind, and predicts
proposals, with no edit under app/. Pause and single steps work for any family."""
import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox

from app.jobs_bridge import JobBridge
from app.panels.train_panel import TrainPanel
from engine.annotations.store import ProjectStore
from engine.data.truth import is_proposal
from engine.jobs import Metrics
from engine.models import registry
from tests.engine.train.toy_families import toy_specs

VIEW_OF = {"segmentation": {"toy heat": "HeatmapView", "toy classes": "ArgmaxView"},
           "detection": {"toy detections": "ImageView"}, "instance": {"toy detections": "ImageView"},
           "embedding": {"toy embedding": "ScatterView"}, "image2image": {"toy pair": "ImageRowView"},
           "optimisation": {"toy gram": "MatrixGridView", "toy losses": "SeriesView"}}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from engine.demo.shapes import build_shapes

    return build_shapes(tmp_path_factory.mktemp("panel_toys"), n_images=10, seed=4)


@pytest.fixture
def panel(qtbot, project):
    specs = toy_specs()
    for spec in specs:
        registry.register_family(spec)
    store = ProjectStore(project, readonly=True)
    image = store.images(split="val")[0]
    store.close()
    bridge = JobBridge()
    predicted = []
    p = TrainPanel(bridge, lambda: project, lambda: image, predicted.append)
    p.resize(1000, 760)
    qtbot.addWidget(p)
    yield p, predicted
    assert bridge.shutdown(timeout=30)
    for spec in specs:
        registry.unregister_family(spec.name)


@pytest.mark.parametrize("kind", registry.KINDS)
def test_each_kind_trains_in_the_panel_with_its_options_views_and_proposals(kind, panel, qtbot, tmp_path):
    p, predicted = panel
    name = f"toy_{kind}"
    assert p.family_combo.findText(name) >= 0
    p.family_combo.setCurrentText(name)
    widgets = p.option_widgets
    assert isinstance(widgets["lr"], QDoubleSpinBox) and widgets["lr"].value() == pytest.approx(0.01)
    assert isinstance(widgets["hidden_size"], QSpinBox) and widgets["hidden_size"].value() == 4
    assert isinstance(widgets["mode"], QComboBox) and widgets["mode"].currentData() == "fast"
    assert p.minutes.value() == pytest.approx(1.0) and p.epochs.value() == 2  # from the preset
    widgets["mode"].setCurrentIndex(1)
    p.minutes.setValue(0.5)
    job_id = p.start_training(out=tmp_path / f"{name}.ckpt")
    config = p.bridge.runner(job_id).job.kwargs["config"]
    assert config["mode"] == "slow" and config["max_seconds"] == pytest.approx(30.0)
    qtbot.waitUntil(lambda: p.train_job_id is None, timeout=60_000)
    assert p.last_outcome.state == "finished", p.last_outcome.error
    assert p.status.text().startswith("done: best val score")
    assert {n: type(v).__name__ for n, v in p.views.panes.items()} == VIEW_OF[kind]
    assert p.views.curves.data("loss")[0] and p.views.curves.data("val_score")[0]
    assert p.predict_current() is not None
    qtbot.waitUntil(lambda: p.predict_job_id is None, timeout=60_000)
    if kind in ("segmentation", "detection", "instance"):
        assert predicted and predicted[-1] and all(is_proposal(a) for a in predicted[-1])
    else:
        assert predicted and predicted[-1] == []


def test_pause_then_step_runs_exactly_one_step_then_resume_finishes(panel, qtbot, tmp_path):
    p, _ = panel
    p.family_combo.setCurrentText("toy_embedding")
    p.epochs.setValue(200)
    p.minutes.setValue(0)
    steps = []
    p.bridge.metrics.connect(lambda job_id, e: steps.append(e.step) if isinstance(e, Metrics) and "loss" in e.values
                             else None)
    p.start_training(out=tmp_path / "pause.ckpt")
    p.toggle_pause()
    assert p.pause_button.text() == "Resume" and p.step_button.isEnabled()
    qtbot.wait(800)  # whatever was in flight arrives
    seen = len(steps)
    qtbot.wait(500)
    assert len(steps) == seen  # paused: no step runs
    p.step_once()
    qtbot.waitUntil(lambda: len(steps) == seen + 1, timeout=10_000)
    qtbot.wait(500)
    assert len(steps) == seen + 1
    p.toggle_pause()
    qtbot.waitUntil(lambda: p.train_job_id is None, timeout=60_000)
    assert p.last_outcome.state == "finished" and max(steps) == 400


def test_options_are_typed_like_the_preset(panel):
    p, _ = panel
    p.family_combo.setCurrentText("unet")
    assert isinstance(p.option_widgets["encoder"], QComboBox) and isinstance(p.option_widgets["augment"], QCheckBox)
    p.family_combo.setCurrentText("yolo")
    assert "encoder" not in p.option_widgets and isinstance(p.option_widgets["input_size"], QSpinBox)


def test_the_panes_a_family_declares_are_laid_out_at_start_and_then_filled(panel, qtbot, tmp_path):
    """Building a pane takes tens of ms: a family that declares its previews gets them built when
    Start is clicked, not in the middle of the run; its previews then fill those very panes."""
    p, _ = panel
    spec = registry.get_family("toy_image2image")
    declared = registry.FamilySpec("toy_declared", spec.kind, model=spec._model, trainer=spec._trainer,
                                   predictor=spec._predictor, cpu_preset=spec.cpu_preset,
                                   gpu_preset=spec.gpu_preset, options=spec.options,
                                   previews={"toy pair": "image_row"})
    registry.register_family(declared)
    try:
        p.refresh_families()
        p.family_combo.setCurrentText("toy_declared")
        p.start_training(out=tmp_path / "declared.ckpt")
        built = p.views.pane("toy pair")
        assert type(built).__name__ == "ImageRowView" and not built.has_image()
        qtbot.waitUntil(lambda: p.train_job_id is None, timeout=60_000)
        assert p.last_outcome.state == "finished", p.last_outcome.error
        assert p.views.pane("toy pair") is built and built.has_image()
    finally:
        registry.unregister_family("toy_declared")
