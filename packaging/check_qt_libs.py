"""Before `make run`: are the system libraries Qt's X11 (xcb) platform plugin needs installed?

PySide6's wheels bring Qt itself but not these Linux libraries; without them the workbench dies
with Qt's "could not load the Qt platform plugin xcb". This prints the exact `apt-get install`
line for the missing ones (Debian/Ubuntu package names) and exits 1. It checks only: nothing is
installed, and `make test` never runs it (the tests use Qt's offscreen platform).

Usage: python packaging/check_qt_libs.py   (exit 0: all there, or not relevant here)
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

# shared object that Qt's xcb plugin loads -> the Debian/Ubuntu package that ships it
LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}


def installed(ldconfig_text: str) -> set[str]:
    """Library file names that `ldconfig -p` lists."""
    names = set()
    for line in ldconfig_text.splitlines():
        line = line.strip()
        if " => " in line:
            names.add(line.split(" ", 1)[0])
    return names


def missing_packages(ldconfig_text: str) -> list[str]:
    have = installed(ldconfig_text)
    return [pkg for lib, pkg in LIBRARIES.items() if lib not in have]


def apt_line(packages: list[str]) -> str:
    return "sudo apt-get install -y " + " ".join(packages)


def relevant() -> bool:
    """Only Linux desktops use the xcb plugin (not macOS, Windows, or an explicit other platform)."""
    if not sys.platform.startswith("linux"):
        return False
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    return platform in ("", "xcb") or platform.startswith("xcb:")


def main() -> int:
    if not relevant():
        return 0
    ldconfig = shutil.which("ldconfig") or ("/sbin/ldconfig" if os.path.exists("/sbin/ldconfig") else None)
    if ldconfig is None:
        return 0  # cannot tell: let Qt speak for itself
    try:
        text = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    packages = missing_packages(text)
    if not packages:
        return 0
    print("visionbench: Qt's X11 platform plugin (xcb) needs system libraries that are not installed:\n"
          f"  {', '.join(packages)}\n"
          "Install them (Debian/Ubuntu) with:\n"
          f"  {apt_line(packages)}\n"
          "(or run headless with QT_QPA_PLATFORM=offscreen)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
