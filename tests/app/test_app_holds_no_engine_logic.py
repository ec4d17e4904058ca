"""The GUI draws; the engine computes (issue 12, point 8). Detection scoring, the background jobs of
the detector views, the detector-file listing and thread priorities each live once, in engine/."""
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"

# what each piece of engine logic looks like in source, and where it lives instead
ENGINE_ONLY = {
    "os.setpriority": "engine.jobs.priority",
    "rglob(": "engine.infer.views_api.list_detector_files",
    "DETECTOR_SUFFIXES =": "engine.infer.views_api",
    "evaluate_detections(": "engine.eval.detection",
    "def evaluate_job": "engine.eval.detection",
    "def yolo_grid_job": "engine.infer.views_api",
    "def detect_job": "engine.infer.views_api",
    "def is_proposal": "engine.data.truth",
}
ALLOWED = {("rglob(", "controllers/add_images.py")}  # listing the user's image folder, not detectors


def test_no_engine_logic_is_written_in_app():
    found = []
    for path in sorted(APP.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(APP).as_posix()
        for needle, home in ENGINE_ONLY.items():
            if needle in text and (needle, rel) not in ALLOWED:
                found.append(f"app/{rel}: {needle!r} belongs in {home}")
    assert not found, "\n".join(found)
