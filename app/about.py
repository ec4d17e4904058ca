"""Help > About: the version and where the documentation lives."""
from __future__ import annotations

import html
import importlib.metadata
from pathlib import Path

import PySide6

SOURCE = Path(__file__).resolve().parents[1]


def version() -> str:
    try:
        return importlib.metadata.version("visionbench")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed as a package)"


def about_text() -> str:
    readme = SOURCE / "README.md"
    docs = f"<a href='file://{html.escape(str(readme))}'>{html.escape(str(readme))}</a>" if readme.is_file() else (
        "the README of the source distribution")
    adr = SOURCE / "docs" / "adr"
    return (f"<h3>Visionbench {html.escape(version())}</h3>"
            "<p>Annotate images, train detection and segmentation models in the background, watch them "
            "think, and pre-label with them.</p>"
            f"<p>Documentation: {docs}<br>Design decisions: {html.escape(str(adr))}<br>"
            "Keyboard shortcuts: Help &gt; Keyboard shortcuts (F1)<br>"
            "Command line: <code>visionbench --help</code></p>"
            f"<p>Qt for Python (PySide6) {html.escape(PySide6.__version__)}</p>")
