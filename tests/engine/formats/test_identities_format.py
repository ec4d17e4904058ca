"""The `identities` format: a folder of sub-folders, one per identity (LFW / Omniglot layout)."""
import hashlib
import json

import cv2
import numpy as np
import pytest

from engine import cli
from engine.annotations import ProjectStore
from engine.data.identities import identity_items


def _people(root, names=("alice", "bob", "carol"), per=2):
    rng = np.random.default_rng(0)
    for name in names:
        (root / name).mkdir(parents=True)
        for k in range(per):
            cv2.imwrite(str(root / name / f"{k:03d}.png"), rng.integers(0, 255, (24, 20, 3), dtype=np.uint8))
    return root


def _identity_files(store):
    """{(identity, sha256 of the image bytes)} of a project's whole-image identities."""
    items, source = identity_items(store)
    assert source == "attribute"
    return {(it.identity, hashlib.sha256(store.image_path(it.image_id).read_bytes()).hexdigest()) for it in items}


def test_identities_import_round_trips_through_export(tmp_path, capsys):
    src = _people(tmp_path / "people")
    first = tmp_path / "a" / "first.vbproj"
    assert cli.main(["import", "identities", str(src), "--project", str(first)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images_added"] == 6 and summary["annotations_added"] == 6
    dst = tmp_path / "exported"
    assert cli.main(["export", "identities", str(dst), "--project", str(first)]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["identities"] == 3 and exported["images"] == 6
    assert sorted(p.name for p in dst.iterdir()) == ["alice", "bob", "carol"]
    second = tmp_path / "b" / "second.vbproj"
    assert cli.main(["import", "identities", str(dst), "--project", str(second)]) == 0
    with ProjectStore(first, readonly=True) as a, ProjectStore(second, readonly=True) as b:
        assert _identity_files(a) == _identity_files(b)
        assert len(_identity_files(a)) == 6


def test_crops_with_an_identity_export_as_pictures_of_their_own(tmp_path, capsys):
    from engine.annotations import Annotation, Box

    src = _people(tmp_path / "people", names=("dan",), per=1)
    project = tmp_path / "p.vbproj"
    assert cli.main(["import", "identities", str(src), "--project", str(project)]) == 0
    with ProjectStore(project) as store:
        rec = store.images()[0]
        store.add_annotation(Annotation(rec.id, store.categories()[0].id, Box(2, 3, 12, 9),
                                        attributes={"identity": "eve"}))
    capsys.readouterr()
    assert cli.main(["export", "identities", str(tmp_path / "out"), "--project", str(project)]) == 0
    crop = next((tmp_path / "out" / "eve").iterdir())
    assert cv2.imread(str(crop)).shape == (6, 10, 3)


def test_images_outside_identity_folders_are_reported_and_nothing_imported(tmp_path, capsys):
    src = _people(tmp_path / "people")
    cv2.imwrite(str(src / "stray.png"), np.zeros((8, 8, 3), np.uint8))
    project = tmp_path / "p.vbproj"
    assert cli.main(["import", "identities", str(src), "--project", str(project)]) == 2
    err = capsys.readouterr().err
    assert "stray.png" in err and "identity" in err
    assert not project.exists()
    assert cli.main(["import", "identities", str(src), "--project", str(project), "--skip-invalid"]) == 0


@pytest.mark.parametrize("make", ["empty", "file"])
def test_a_source_without_identity_folders_is_bad_input(tmp_path, capsys, make):
    src = tmp_path / "src"
    if make == "empty":
        src.mkdir()
    else:
        src.write_text("x")
    assert cli.main(["import", "identities", str(src), "--project", str(tmp_path / "p.vbproj")]) == 2
    assert str(src) in capsys.readouterr().err
