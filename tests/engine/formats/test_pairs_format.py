"""Image pairs: an A|B folder imports as images with their targets, splits exactly, and exports back."""
import cv2
import numpy as np
import pytest

from engine.annotations.errors import ImportFailed
from engine.annotations.formats import export_from, import_into
from engine.annotations.formats.pairs import read_target, target_path
from engine.annotations.store import ProjectStore
from engine.cli import main


def _write(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[:, :, ::-1])


def _ab_folder(root, n=3, w=20, h=12):
    rng = np.random.default_rng(0)
    pictures = {}
    for split in ("train", "val"):
        for k in range(n):
            ab = rng.integers(0, 256, (h, 2 * w, 3), dtype=np.uint8)
            _write(root / split / f"p{k}.png", ab)
            pictures[(split, f"p{k}")] = ab
    return pictures


def test_an_ab_folder_splits_exactly_and_round_trips_through_export(tmp_path):
    pictures = _ab_folder(tmp_path / "facades")
    with ProjectStore.create(tmp_path / "proj" / "p.vbproj") as store:
        report = import_into(store, "pairs", tmp_path / "facades")
        assert report.images_added == 6
        for rec in store.images():
            ab = pictures[(rec.split, rec.path.rsplit("/", 1)[1][:-4])]
            a_file = store.image_path(rec)
            assert (rec.width, rec.height) == (20, 12)
            assert np.array_equal(cv2.imread(str(a_file))[:, :, ::-1], ab[:, :20])
            assert np.array_equal(read_target(a_file), ab[:, 20:])
        export_from(store, "pairs", tmp_path / "out")
    for (split, name), ab in pictures.items():
        assert np.array_equal(cv2.imread(str(tmp_path / "out" / split / f"{name}.png"))[:, :, ::-1], ab)


def test_a_and_b_folders_pair_by_name_and_problems_name_the_file(tmp_path):
    src = tmp_path / "pairs"
    rng = np.random.default_rng(1)
    for name in ("x", "y"):
        img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        _write(src / "A" / f"{name}.png", img)
        _write(src / "B" / f"{name}.jpg" if name == "x" else src / "B" / f"{name}.png", img)
    _write(src / "A" / "lonely.png", np.zeros((8, 8, 3), np.uint8))
    _write(src / "B" / "big.png", np.zeros((9, 8, 3), np.uint8))
    _write(src / "A" / "big.png", np.zeros((8, 8, 3), np.uint8))
    project = tmp_path / "proj" / "p.vbproj"
    with ProjectStore.create(project) as store:
        with pytest.raises(ImportFailed) as exc:
            import_into(store, "pairs", src)
        text = "\n".join(map(str, exc.value.problems))
        assert "lonely.png" in text and "no partner" in text
        assert "big.png" in text and "8x9" in text
        assert store.count_images() == 0
        assert not (project.parent / "pairs_pairs").exists()  # a failed import leaves no files
        report = import_into(store, "pairs", src, skip_invalid=True)
        assert report.images_added == 2
        for rec in store.images():
            assert target_path(store.image_path(rec)).is_file()


def test_the_cli_imports_pairs_and_refuses_an_odd_ab_width(tmp_path, capsys):
    _write(tmp_path / "odd" / "a.png", np.zeros((4, 7, 3), np.uint8))
    project = tmp_path / "p.vbproj"
    assert main(["import", "pairs", str(tmp_path / "odd"), "--project", str(project)]) == 2
    err = capsys.readouterr().err
    assert "a.png" in err and "even width" in err
    assert not project.exists()
    _ab_folder(tmp_path / "ok", n=1)
    assert main(["import", "pairs", str(tmp_path / "ok"), "--project", str(project)]) == 0
