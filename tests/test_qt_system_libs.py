"""`make run` checks the system libraries Qt's xcb plugin needs and prints the exact apt-get line
for the missing ones; `make test` does not need them (the tests run offscreen)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "packaging" / "check_qt_libs.py"
LIBS = ["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxkbcommon-x11.so.0",
        "libxcb-xinerama.so.0", "libxcb-randr.so.0", "libxcb-render-util.so.0", "libxcb-image.so.0",
        "libxcb-shape.so.0", "libxcb-xkb.so.1", "libEGL.so.1", "libGL.so.1", "libfontconfig.so.1", "libdbus-1.so.3"]


def fake_ldconfig(folder: Path, present: list[str]) -> dict:
    listing = "".join(f"\t{lib} (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/{lib}\\n" for lib in present)
    exe = folder / "ldconfig"
    exe.write_text(f"#!/bin/sh\nprintf '{len(present)} libs found in cache\\n{listing}'\n")
    exe.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env["PATH"] = f"{folder}:{env.get('PATH', '')}"
    return env


def test_a_bare_debian_gets_the_exact_apt_get_line(tmp_path):
    present = [lib for lib in LIBS if lib not in ("libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1")]
    run = subprocess.run([sys.executable, str(SCRIPT)], env=fake_ldconfig(tmp_path, present), capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 1
    assert "sudo apt-get install -y libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1\n" in run.stderr


def test_nothing_missing_or_another_platform_passes(tmp_path):
    env = fake_ldconfig(tmp_path, LIBS)
    assert subprocess.run([sys.executable, str(SCRIPT)], env=env, timeout=60).returncode == 0
    bare = fake_ldconfig(tmp_path, [])
    bare["QT_QPA_PLATFORM"] = "offscreen"  # what the tests use: no X11 libraries needed
    assert subprocess.run([sys.executable, str(SCRIPT)], env=bare, timeout=60).returncode == 0


def test_make_run_checks_and_make_test_does_not():
    text = (ROOT / "Makefile").read_text()
    run = text.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    test = text.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "check_qt_libs.py" in run and run.index("check_qt_libs.py") < run.index("visionbench gui")
    assert "check_qt_libs" not in test and "QT_QPA_PLATFORM=offscreen" in test
    readme = (ROOT / "README.md").read_text()
    assert "libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in readme
