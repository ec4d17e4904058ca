"""The house rules hold: engine is headless, engine.annotations is torch-free, app asks engine.

import-linter's contracts live in pyproject.toml; this runs them, and proves by importing every
engine module in a fresh interpreter that none of them pulls in Qt at run time either.
"""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_import_linter_contracts_are_kept():
    run = subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 broken" in run.stdout and "KEPT" in run.stdout


_HEADLESS = """
import importlib, json, pkgutil, sys
import engine
failed = {}
names = []
for mod in pkgutil.walk_packages(engine.__path__, "engine."):
    names.append(mod.name)
    try:
        importlib.import_module(mod.name)
    except Exception as exc:
        failed[mod.name] = f"{type(exc).__name__}: {exc}"
qt = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "shiboken6", "pyqtgraph", "app"))
print(json.dumps({"modules": names, "failed": failed, "qt": qt}))
"""


def test_every_engine_module_imports_without_qt():
    run = subprocess.run([sys.executable, "-c", _HEADLESS], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert {"engine.cli", "engine.annotations.store", "engine.demo.shapes"} <= set(report["modules"])
    assert report["failed"] == {}
    assert report["qt"] == []


_TORCH_FREE = """
import importlib, json, pkgutil, sys
import engine.annotations
for mod in pkgutil.walk_packages(engine.annotations.__path__, "engine.annotations."):
    importlib.import_module(mod.name)
import engine.cli
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "PySide6"))))
"""


def test_annotations_and_cli_run_without_loading_torch():
    """engine.annotations (all formats) and the CLI's start-up import neither torch nor Qt, at run time too:
    `visionbench import/export/info` work on a machine where torch is broken or missing."""
    run = subprocess.run([sys.executable, "-c", _TORCH_FREE], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []


def test_a_model_module_importing_the_trainer_breaks_the_contract(tmp_path):
    """The contract is not vacuous: give engine.models one import of engine.train (or infer) and
    lint-imports fails, naming the contract."""
    import shutil

    for part in ("engine", "app"):
        shutil.copytree(REPO / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    for target in ("engine.train.loop", "engine.infer.run"):
        model = tmp_path / "engine" / "models" / "yolo.py"
        original = (REPO / "engine" / "models" / "yolo.py").read_text()
        model.write_text(original + f"\n\ndef _late():\n    import {target}  # noqa: F401\n")
        run = subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)})
        assert run.returncode != 0, run.stdout
        assert "model definitions import neither the training loop nor the predictors BROKEN" in run.stdout
