"""Render packaging/icons/visionbench.svg to a PNG with Qt's SVG renderer.

Usage: python packaging/render_icon.py [SIZE]   (default 256 -> icons/visionbench-256.png)
"""
from __future__ import annotations

import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent / "icons"


def render(svg: Path, png: Path, size: int = 256) -> bool:
    """Paint `svg` onto a transparent `size` x `size` px image and save it; False if Qt cannot."""
    try:
        from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter
        from PySide6.QtSvg import QSvgRenderer
    except ImportError:  # QtSvg is optional in some PySide6 builds: the SVG alone is enough
        return False
    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - QImage needs one
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg}: not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(QColor(0, 0, 0, 0))
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    return image.save(str(png))


if __name__ == "__main__":
    px = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    out = ICONS / f"visionbench-{px}.png"
    print(out if render(ICONS / "visionbench.svg", out, px) else "QtSvg not available; PNG skipped")
