"""`visionbench export project`: a read-only copy a training node reads like the project itself."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from engine.annotations.project_copy import check_copy, export_project
from engine.annotations.store import ProjectStore
from engine.cli import main
from tests.engine.data.seg_project import make_seg_project
from tests.engine.train.unet_fixtures import TINY_UNET

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_copy_has_every_image_and_annotation_and_trains_without_the_original(tmp_path, capsys):
    project = make_seg_project(tmp_path / "src", n_train=6, n_val=2, size=32)
    with ProjectStore(project, readonly=True) as store:
        images = {r.path: (r.split, len(store.annotations(r.id))) for r in store.images()}
    assert main(["export", "project", str(tmp_path / "copy"), "--project", str(project)]) == 0
    summary = json.loads(capsys.readouterr().out)
    copy = Path(summary["project"])
    assert summary["images"] == len(images) == 8
    assert check_copy(tmp_path / "copy") == []
    assert not copy.stat().st_mode & 0o222  # read-only: nothing on the node writes into it
    with ProjectStore(copy, readonly=True) as store:
        got = {r.path: (r.split, len(store.annotations(r.id))) for r in store.images()}
        assert all(store.image_path(r).is_file() and str(store.image_path(r)).startswith(str(tmp_path / "copy"))
                   for r in store.images())
    assert sorted(got.values()) == sorted(images.values())
    before = digest(copy)
    config = json.dumps({**TINY_UNET, "max_steps": 2})
    assert main(["train", "unet", "--project", str(copy), "--out", str(tmp_path / "m.ckpt"), "--epochs", "1",
                 "--config", config]) == 0
    assert (tmp_path / "m.ckpt").is_file()
    assert digest(copy) == before  # training only reads


def test_a_changed_image_is_found_and_a_non_empty_folder_is_refused(tmp_path):
    project = make_seg_project(tmp_path / "src", n_train=2, n_val=1, size=32)
    with ProjectStore(project, readonly=True) as store:
        export_project(store, tmp_path / "copy")
        with pytest.raises(Exception) as err:
            export_project(store, tmp_path / "copy")
        assert "not empty" in str(err.value)
    picture = next((tmp_path / "copy" / "images").rglob("*.png"))
    picture.chmod(0o644)
    picture.write_bytes(b"not the same picture")
    problems = check_copy(tmp_path / "copy")
    assert len(problems) == 1 and picture.name in problems[0]
