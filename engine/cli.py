"""The `visionbench` command: the same engine as the GUI, scriptable and CI-friendly.

Exit codes: 0 ok; 2 bad input (the message on stderr names the file and the field); 1 internal
error (short message; the traceback only with --debug or VISIONBENCH_DEBUG=1).
Heavy modules (torch, formats, models) are imported inside the subcommands that need them, so
`visionbench --help` and `visionbench info` start fast.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import inspect
import json
import os
import sys
import traceback
from collections import Counter
from pathlib import Path
from typing import Callable, Sequence

from engine.annotations.errors import BadInput, ImportFailed

COMMANDS = ("gui", "demo", "import", "export", "export-model", "train", "predict", "eval", "info", "stylize",
            "verify", "search")
FORMATS = ("coco", "voc", "yolo", "labelme", "masks", "identities", "pairs")
EXPORT_FORMATS = (*FORMATS, "project")
SPLITS = ("train", "val", "test")
STORE_MODES = ("proposals", "truth", "none")  # engine.infer.run.STORE_MODES (not imported: --help stays fast)


class _UsageError(Exception):
    """argparse found a bad command line (exit code 2)."""


class _Reported(Exception):
    """The message is already on stderr; main() only returns the exit code."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class _Parser(argparse.ArgumentParser):
    # argparse calls sys.exit on errors; raising instead lets main() return the code (tests run in-process)
    def error(self, message: str):
        raise _UsageError(f"{self.prog}: error: {message}\n{self.format_usage()}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="visionbench", description="Visionbench: annotate, train, watch and compare vision models.")
    p.add_argument("--debug", action="store_true", help="print tracebacks of internal errors")
    p.add_argument("--version", action="version", version=f"visionbench {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    g = sub.add_parser("gui", help="open the workbench (no PROJECT: the demo project)")
    g.add_argument("project", nargs="?", help="a .vbproj file")

    d = sub.add_parser("demo", help="build the demo projects (photos, shapes, galaxies) in DIR")
    d.add_argument("--out", required=True, help="folder to write (must not hold demo projects yet)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--shapes", type=int, default=400, help="number of shapes images")
    d.add_argument("--galaxies", type=int, default=400, help="number of galaxy images")
    d.add_argument("--glyphs", type=int, default=300, help="number of glyph identities (10 renderings each)")

    i = sub.add_parser("import", help="import annotations (and their images) into a project")
    i.add_argument("format", choices=FORMATS)
    i.add_argument("src", help="annotation file or folder")
    i.add_argument("--project", required=True, help="a .vbproj file (created if missing)")
    i.add_argument("--skip-invalid", action="store_true", help="import the valid part, list what was skipped")

    e = sub.add_parser("export", help="export a project's annotations (or the whole project for a training node)")
    e.add_argument("format", choices=EXPORT_FORMATS,
                   help="an annotation format, or project: a self-contained read-only copy of the project and "
                        "its images (with MANIFEST.json) that `visionbench train` reads on a machine without "
                        "the workbench")
    e.add_argument("dst", help="output file or folder")
    e.add_argument("--project", required=True)
    e.add_argument("--split", choices=SPLITS)
    e.add_argument("--task", choices=("auto", "detect", "segment"), default=None,
                   help="yolo only: detect writes one box row per object, segment one polygon row per object; "
                        "auto (default) picks segment when any object has a mask or polygon")
    e.add_argument("--keep-image-format", action="store_true",
                   help="voc only: copy images as they are instead of writing every image as JPEGImages/<id>.jpg")
    e.add_argument("--overwrite", action="store_true",
                   help="export into a non-empty folder, replacing the same-named files in it")
    e.add_argument("--include-proposals", action="store_true",
                   help="also write unreviewed model proposals (left out by default: an export holds ground truth)")

    m = sub.add_parser("export-model", help="write a checkpoint as ONNX or TorchScript for deployment",
                       description="Segmentation, detection (boxes, labels and scores as outputs) and families that "
                                   "offer it; inputs and outputs are described in engine/infer/deploy.py and in the "
                                   "ONNX file's metadata. The workbench opens exported ONNX detectors again.")
    m.add_argument("checkpoint", metavar="CKPT")
    m.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    m.add_argument("--out", required=True, metavar="FILE")

    t = sub.add_parser("train", help="train a model family on a project",
                       epilog="A family's own options (its Train panel schema) are flags too: --KEY VALUE, e.g. "
                              "`train pix2pix --pairs labels2photo`; they override --config.")
    t.add_argument("family", help="model family: unet, fasterrcnn, maskrcnn, yolo, and any plugin family "
                                  "(what engine.models.registry lists)")
    t.add_argument("--project", required=True)
    t.add_argument("--out", required=True, help="checkpoint file to write")
    t.add_argument("--epochs", type=int, default=None, help="at most this many epochs (the family's preset by default)")
    t.add_argument("--time", type=float, default=None, metavar="MINUTES",
                   help="time budget: training stops, validates and saves within it (config key max_seconds; "
                        "each family's CPU preset has one); 0 = none")
    t.add_argument("--previews", default=None, metavar="DIR",
                   help="write each live view as DIR/<name>.png while training (the latest of each)")
    t.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--config", default=None, help="JSON object of family options, or @file.json")
    t.add_argument("--resume", default=None, metavar="CKPT",
                   help="continue a stopped run from CKPT.state (model, optimiser, schedule, epoch, data order "
                        "and RNG); --time then gives the time for this part")
    t.add_argument("--style", default=None, metavar="IMAGE",
                   help="faststyle: the style image, a file or a texture (brick, grass, gravel); config key style")

    r = sub.add_parser(
        "predict", help="run a model on a project's images or on image files",
        description="Run a model (a Visionbench checkpoint, an Ultralytics YOLO .onnx export or a torchvision "
                    "COCO .pth) over a project's images (--project P) or over image files (IMAGE|DIR|GLOB). "
                    "A project is changed only as --store says; the JSON summary says what went where.")
    r.add_argument("checkpoint", metavar="CKPT")
    r.add_argument("images", nargs="*", metavar="IMAGE|DIR|GLOB",
                   help="image files instead of a project: files, folders (searched recursively) or quoted "
                        "patterns such as 'photos/*.jpg'")
    r.add_argument("--project", help="a .vbproj file whose images to predict")
    r.add_argument("--split", choices=SPLITS, help="only the images of this split of the project")
    r.add_argument("--store", choices=STORE_MODES,
                   help="what goes into the project: proposals to review in the workbench (the default), "
                        "truth (ground truth, the model's score kept as model_score; only when asked) or none "
                        "(the project is only read). With --coco-results or --masks-out the default is none. "
                        "Proposals replace this model's unreviewed proposals; truth replaces all its earlier "
                        "predictions")
    r.add_argument("--as-proposals", action="store_true",
                   help="deprecated, removed in the next release: the same as --store proposals")
    r.add_argument("--out", metavar="DIR",
                   help="with IMAGE|DIR|GLOB: one LabelMe JSON per image, beside a copy of the image (or beside "
                        "the image itself when it lies in DIR); LabelMe files predict did not write are never "
                        "overwritten")
    r.add_argument("--masks-out", metavar="DIR",
                   help="one PNG per image, pixel = category id (project) or class index + 1 (image files), "
                        "0 = background, with class_names.txt")
    r.add_argument("--coco-results", metavar="OUT.json",
                   help="COCO results JSON (ids as `export coco` gives them; for image files also "
                        "OUT_images.json naming the images and categories)")
    r.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    _threshold_args(r)

    v = sub.add_parser("eval", help="evaluate a checkpoint; metrics as JSON on stdout")
    v.add_argument("checkpoint", metavar="CKPT")
    v.add_argument("--project", required=True)
    v.add_argument("--split", choices=SPLITS, default="val")
    v.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    _threshold_args(v)

    from engine.style_cli import add_stylize_parser

    add_stylize_parser(sub)
    _siamese_args(sub)

    n = sub.add_parser("info", help="a project's counts, or what a checkpoint is, as JSON")
    n.add_argument("checkpoint", nargs="?", metavar="CKPT",
                   help="a checkpoint or .onnx file: family, classes, input size, training summary, where it "
                        "was trained from")
    n.add_argument("--project", help="a .vbproj file: images per split/status, annotations per kind/category")
    return p


def _version() -> str:
    try:
        return importlib.metadata.version("visionbench")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed as a package)"


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is outside 0..1")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is less than 1")
    return value


def _threshold_args(parser: argparse.ArgumentParser) -> None:
    from engine.infer.thresholds import HELP

    parser.add_argument("--score-threshold", type=_fraction, metavar="S", help=HELP["score_threshold"])
    parser.add_argument("--iou", dest="nms_iou", type=_fraction, metavar="T", help=HELP["nms_iou"])
    parser.add_argument("--max-detections", type=_count, metavar="N", help=HELP["max_detections"])


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "predict" and not any(e.startswith("-") for e in extra):
        # argparse fills CKPT's IMAGE list before the options: `predict CKPT --out DIR a.jpg b.jpg`
        # leaves the images over (what the shell expands a glob into, wherever it stands)
        args.images = [*args.images, *extra]
    elif extra and args.command == "train":
        args.family_options = _family_options(args.family, extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _family_options(family: str, extra: list[str]) -> dict:
    """``train FAMILY --KEY VALUE ...``: the family's own options (its Train panel schema) as flags,
    typed by the schema; anything else is a usage error naming the flag and the known ones."""
    from engine.models.registry import get_family

    try:
        schema = {o["key"]: o for o in get_family(family).schema()}
    except ValueError as exc:
        raise BadInput(str(family), "family", str(exc)) from None
    out, k = {}, 0
    while k < len(extra):
        flag, value = extra[k], None
        if "=" in flag:
            flag, value = flag.split("=", 1)
        key = flag[2:].replace("-", "_") if flag.startswith("--") else None
        if key not in schema:
            known = ", ".join(f"--{name}" for name in schema) or "none"
            raise _UsageError(f"visionbench train: error: unrecognized argument {flag}; {family}'s options: {known}")
        if value is None:
            if k + 1 >= len(extra):
                raise _UsageError(f"visionbench train: error: {flag} needs a value")
            value, k = extra[k + 1], k + 1
        k += 1
        opt = schema[key]
        try:
            if opt["type"] == "choice" and value not in [str(c) for c in opt["choices"]]:
                raise ValueError(f"one of {', '.join(map(str, opt['choices']))}")
            out[key] = {"int": int, "float": float, "bool": lambda v: {"true": True, "1": True, "yes": True,
                                                                       "false": False, "0": False, "no": False}[
                v.lower()]}.get(opt["type"], str)(value)
        except (ValueError, KeyError) as exc:
            raise _UsageError(f"visionbench train: error: {flag} {value!r}: expected "
                              f"{exc if opt['type'] == 'choice' else opt['type']}") from None
    return out


def _with_default_command(argv: list[str]) -> list[str]:
    """`visionbench` and `visionbench PROJECT` mean `visionbench gui [PROJECT]`."""
    for k, a in enumerate(argv):
        if a in ("-h", "--help"):
            return argv
        if a.startswith("-"):
            continue
        return argv if a in COMMANDS else argv[:k] + ["gui"] + argv[k:]
    return argv + ["gui"]


# ---- progress -----------------------------------------------------------------------------------
def _bar(desc: str, total: int | None = None):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True,
                disable=None)  # None: no bar when stderr is not a terminal (logs, CI)


def _progress_callback(desc: str) -> tuple[Callable, Callable[[], None]]:
    """A `progress` callable for engine APIs plus a closer.

    Accepts what engine APIs report: an event with .step/.total (engine.jobs.events.Progress) or
    plain numbers (done, total[, stage]). A new stage ("read", "store", "write") restarts the bar
    under the description "<desc>: <stage>".
    """
    bar = _bar(desc)
    current = {"stage": None}

    def progress(done=None, total=None, stage=None, *_, **__):
        step = getattr(done, "step", done)
        total = getattr(done, "total", total)
        if stage is not None and stage != current["stage"]:
            current["stage"] = stage
            bar.set_description(f"{desc}: {stage}", refresh=False)
            bar.reset(total=total)
        elif total is not None and bar.total != total:
            bar.total = total
        if isinstance(step, (int, float)) and step >= bar.n:
            bar.update(step - bar.n)  # update() redraws at most every mininterval: cheap per image

    return progress, bar.close


def _call(fn: Callable, desc: str, optional: dict | None = None, bar: bool = True, **kwargs):
    """Call an engine API with `kwargs`, plus those of `optional` it accepts, and a tqdm `progress`
    callback when it takes one and `bar` (the model commands print their own bars and metrics)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs.update({k: v for k, v in (optional or {}).items() if open_ended or k in params})
    takes_progress = bar and "progress" in params
    if not takes_progress:
        return fn(**kwargs)
    progress, close = _progress_callback(desc)
    try:
        return fn(progress=progress, **kwargs)
    finally:
        close()


def _lazy(module: str, name: str) -> Callable:
    """engine.<module>.<name>, with a clear message while that part is not installed."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise RuntimeError(f"{module} is not available in this build ({exc})") from None
        raise
    fn = getattr(mod, name, None)
    if fn is None:
        raise RuntimeError(f"{module}.{name} is not available in this build")
    return fn


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


# ---- subcommands --------------------------------------------------------------------------------
def _project_arg(path: str, must_exist: bool = True, field: str = "--project") -> Path:
    p = Path(path)
    if must_exist and not p.exists():
        raise BadInput(str(p), field, "file not found")
    if p.suffix.lower() != ".vbproj" and not p.exists():
        raise BadInput(str(p), field, "a project file ends in .vbproj")
    return p


def cmd_gui(args) -> int:
    if args.project:
        project = _project_arg(args.project, field="PROJECT")
    else:
        from engine.demo import ensure_user_demo

        bars: dict[str, object] = {}

        def progress(stage: str, done: int, total: int) -> None:
            bar = bars.get(stage) or bars.setdefault(stage, _bar(f"building demo: {stage}", total))
            bar.update(done - bar.n)

        project = ensure_user_demo(progress=progress) / "photos.vbproj"
        for bar in bars.values():
            bar.close()
    # engine stays Qt-free (import-linter forbids `import app` here): the GUI is a front end
    # loaded by name at run time, so a headless install can still use every other subcommand.
    try:
        app_main = importlib.import_module("app.main")
    except ModuleNotFoundError as exc:
        if exc.name in ("app", "app.main"):
            print("visionbench: the GUI (app.main) is not available in this build; "
                  "the other subcommands work without it", file=sys.stderr)
            return 1
        raise
    run = getattr(app_main, "run", None)
    if run is None:
        print("visionbench: app.main has no run(project) entry point yet", file=sys.stderr)
        return 1
    code = run(str(project))
    return int(code or 0)


def cmd_demo(args) -> int:
    from engine.demo import build_demo

    bars: dict[str, object] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage) or bars.setdefault(stage, _bar(stage, total))
        bar.update(done - bar.n)

    try:
        paths = build_demo(args.out, seed=args.seed, n_shapes=args.shapes, n_galaxies=args.galaxies,
                           n_glyphs=args.glyphs, progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    _print_json({name: str(p) for name, p in paths.items()})
    return 0


def cmd_import(args) -> int:
    from engine.annotations.store import ProjectStore

    import_into = _lazy("engine.annotations.formats", "import_into")
    src = Path(args.src)
    if not src.exists():
        raise BadInput(str(src), "SRC", "file or folder not found")
    project = _project_arg(args.project, must_exist=False)
    store = ProjectStore(project, create=True)
    try:
        try:
            report = _call(import_into, f"import {args.format}", store=store, fmt=args.format, src=src,
                           skip_invalid=args.skip_invalid)
        except ImportFailed as exc:
            n = len(exc.problems)
            print(f"visionbench: {n} problem{'s' * (n != 1)} in {src}; nothing was imported "
                  "(--skip-invalid imports the rest and lists these):", file=sys.stderr)
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
            raise _Reported(2) from None
        summary = report.as_dict() if hasattr(report, "as_dict") else dict(report)
        summary["project"] = str(project)
        summary["totals"] = {"images": store.count_images(), "annotations": store.count_annotations(),
                             "categories": len(store.categories())}
    except BaseException:
        store.discard()  # deletes the project only if this process created it: no empty project left
        raise
    store.close()
    _print_json(summary)
    return 0


def cmd_export(args) -> int:
    from engine.annotations.store import ProjectStore

    export_from = _lazy("engine.annotations.formats", "export_from")
    options = {}
    if args.task is not None:
        if args.format != "yolo":
            raise BadInput("<command line>", "--task", f"applies to yolo exports only, not {args.format}")
        options["task"] = args.task
    if args.keep_image_format:
        if args.format != "voc":
            raise BadInput("<command line>", "--keep-image-format", f"applies to voc exports only, not {args.format}")
        options["keep_image_format"] = True
    if args.include_proposals and args.format == "project":
        raise BadInput("<command line>", "--include-proposals", "a project copy holds every annotation as it is")
    if args.format == "project":
        export_project = _lazy("engine.annotations.project_copy", "export_project")
        with ProjectStore(_project_arg(args.project), readonly=True) as store:
            _print_json(_call(export_project, "export project", store=store, dst=Path(args.dst),
                              overwrite=args.overwrite))
        return 0
    with ProjectStore(_project_arg(args.project), readonly=True) as store:
        summary = _call(export_from, f"export {args.format}", store=store, fmt=args.format, dst=Path(args.dst),
                        split=args.split, overwrite=args.overwrite, proposals=args.include_proposals, **options)
    _print_json(summary if summary is not None else {"dst": args.dst})
    return 0


def _config(text: str | None) -> dict:
    if not text:
        return {}
    source = "--config"
    if text.startswith("@"):
        source = text[1:]
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise BadInput(source, "--config", f"cannot read ({exc.strerror})") from None
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(source, "--config", f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(cfg, dict):
        raise BadInput(source, "--config", "must be a JSON object like {\"lr\": 0.001}")
    return cfg


def cmd_train(args) -> int:
    train_command = _lazy("engine.train.run", "train_command")
    result = _call(train_command, f"train {args.family}", bar=False, family=args.family,
                   project=_project_arg(args.project), out=Path(args.out), epochs=args.epochs,
                   device=args.device, seed=args.seed,
                   config={**_config(args.config), **({"style": args.style} if args.style else {}),
                           **getattr(args, "family_options", {})}, minutes=args.time,
                   previews_dir=args.previews, resume=args.resume)
    if result is not None:
        _print_json(result)
    return 0


def cmd_export_model(args) -> int:
    export_model_command = _lazy("engine.infer.deploy", "export_model_command")
    _print_json(_call(export_model_command, "export-model", checkpoint=_checkpoint_arg(args.checkpoint),
                      fmt=args.format, out=Path(args.out)))
    return 0


def _checkpoint_arg(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        # a torchvision COCO detector by name, from the model folder or torch's hub cache
        found = _lazy("engine.infer.pretrained", "weights_for_name")(path)
        if found is None:
            raise BadInput(str(p), "CKPT", "checkpoint file not found")
        return found
    return p


def _usage(command: str, message: str) -> _UsageError:
    return _UsageError(f"visionbench {command}: error: {message}")


def _thresholds(args) -> dict:
    return {"score_threshold": args.score_threshold, "nms_iou": args.nms_iou, "max_detections": args.max_detections}


def _predict_files(args, ckpt: Path, masks_out, coco_results):
    if args.project:
        raise _usage("predict", "give --project P or IMAGE|DIR|GLOB, not both")
    for flag, value in (("--store", args.store), ("--split", args.split), ("--as-proposals", args.as_proposals)):
        if value:
            raise _usage("predict", f"{flag} is about a project; predictions on image files are stored in none")
    if not (args.out or masks_out or coco_results):
        raise _usage("predict", "say where the results of IMAGE|DIR|GLOB go: --out DIR (LabelMe JSON), "
                                "--masks-out DIR or --coco-results OUT.json")
    predict_files_command = _lazy("engine.infer.predict_files", "predict_files_command")
    return _call(predict_files_command, "predict", bar=False, ckpt=ckpt, inputs=list(args.images),
                 out=Path(args.out) if args.out else None, masks_out=masks_out, coco_results=coco_results,
                 device=args.device, **_thresholds(args))


def cmd_predict(args) -> int:
    ckpt = _checkpoint_arg(args.checkpoint)
    masks_out = Path(args.masks_out) if args.masks_out else None
    coco_results = Path(args.coco_results) if args.coco_results else None
    if args.images:
        result = _predict_files(args, ckpt, masks_out, coco_results)
    else:
        if not args.project:
            raise _usage("predict", "give --project P (a project's images) or IMAGE|DIR|GLOB (image files)")
        if args.out and _lazy("engine.style_cli", "is_faststyle")(ckpt):
            result = _lazy("engine.style_cli", "predict_faststyle")(ckpt, _project_arg(args.project), Path(args.out),
                                                                    args.split, args.device)
            _print_json(result)
            return 0
        if args.out and _lazy("engine.infer.translate", "is_image2image")(ckpt):
            # an image-to-image model makes pictures, not annotations: they go to files
            translate = _lazy("engine.infer.translate", "translate_project_command")
            _print_json(_call(translate, "predict", bar=False, ckpt=ckpt, project=_project_arg(args.project),
                              out=Path(args.out), split=args.split, device=args.device))
            return 0
        if args.out:
            raise _usage("predict", "--out is for IMAGE|DIR|GLOB (or image-to-image models); a project's predictions "
                                    "go into it (--store) or to --masks-out / --coco-results")
        store = args.store
        if args.as_proposals:
            print("visionbench: --as-proposals is deprecated and goes in the next release; "
                  "use --store proposals", file=sys.stderr)
            if store not in (None, "proposals"):
                raise _usage("predict", f"--as-proposals contradicts --store {store}")
            store = "proposals"
        predict_command = _lazy("engine.infer.run", "predict_command")
        result = _call(predict_command, "predict", bar=False, ckpt=ckpt, project=_project_arg(args.project),
                       split=args.split, store=store, masks_out=masks_out, coco_results=coco_results,
                       device=args.device, **_thresholds(args))
    if result is not None:
        _print_json(result)
    return 0


def _siamese_args(sub) -> None:
    y = sub.add_parser("verify", help="same identity? distance of two images under an embedding checkpoint")
    y.add_argument("checkpoint", metavar="CKPT")
    y.add_argument("image_a", metavar="IMAGE_A")
    y.add_argument("image_b", metavar="IMAGE_B")
    y.add_argument("--tau", type=float, default=None, help="distance threshold (default: the checkpoint's EER tau)")
    y.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    s = sub.add_parser("search", help="the project's images (or crops) nearest to a query image")
    s.add_argument("checkpoint", metavar="CKPT")
    s.add_argument("query", metavar="QUERY_IMAGE")
    s.add_argument("--project", required=True)
    s.add_argument("-k", type=_count, default=10, help="how many results")
    s.add_argument("--what", choices=("images", "crops"), default="images",
                   help="search whole images or the crops of the project's annotations")
    s.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")


def cmd_verify(args) -> int:
    verify_command = _lazy("engine.infer.siamese_commands", "verify_command")
    for name, value in (("IMAGE_A", args.image_a), ("IMAGE_B", args.image_b)):
        if not Path(value).is_file():
            raise BadInput(value, name, "image file not found")
    _print_json(verify_command(ckpt=_checkpoint_arg(args.checkpoint), image_a=args.image_a, image_b=args.image_b,
                               device=args.device, tau=args.tau))
    return 0


def cmd_search(args) -> int:
    search_command = _lazy("engine.infer.siamese_commands", "search_command")
    if not Path(args.query).is_file():
        raise BadInput(args.query, "QUERY_IMAGE", "image file not found")
    _print_json(_call(search_command, "embedding the project", ckpt=_checkpoint_arg(args.checkpoint),
                      project=_project_arg(args.project), query=args.query, k=args.k, device=args.device,
                      what=args.what))
    return 0


def cmd_eval(args) -> int:
    eval_command = _lazy("engine.eval.run", "eval_command")
    metrics = _call(eval_command, "eval", bar=False, ckpt=_checkpoint_arg(args.checkpoint),
                    project=_project_arg(args.project), split=args.split, device=args.device, **_thresholds(args))
    _print_json(metrics)
    return 0


def project_info(store) -> dict:
    """Counts of a project as a JSON-able dict (images per split/status, annotations per kind/category)."""
    names = {c.id: c.name for c in store.categories()}
    splits = Counter(dict(store.execute("SELECT split, count(*) FROM images GROUP BY split").fetchall()))
    statuses = Counter(dict(store.execute("SELECT status, count(*) FROM images GROUP BY status").fetchall()))
    kinds = dict(store.execute("SELECT kind, count(*) FROM annotations GROUP BY kind").fetchall())
    per_cat = {names.get(cid, f"#{cid}"): n for cid, n in
               store.execute("SELECT category_id, count(*) FROM annotations GROUP BY category_id").fetchall()}
    return {
        "project": str(store.path),
        "images": store.count_images(),
        "images_per_split": {s: splits.get(s, 0) for s in SPLITS},
        "images_per_status": {s: statuses.get(s, 0) for s in ("new", "in_progress", "done", "reviewed")},
        "annotations": store.count_annotations(),
        "annotations_per_kind": kinds,
        "annotations_per_category": {name: per_cat.get(name, 0) for name in names.values()},
        "categories": list(names.values()),
    }


def cmd_info(args) -> int:
    from engine.annotations.store import ProjectStore

    project, ckpt = args.project, args.checkpoint
    if ckpt and not project and Path(ckpt).suffix.lower() == ".vbproj":
        project, ckpt = ckpt, None  # `info P.vbproj`: what else could it mean
    if bool(project) == bool(ckpt):
        raise _usage("info", "give --project P (a project) or CKPT (a model file), one of the two")
    if ckpt:
        checkpoint_info = _lazy("engine.infer.checkpoint_info", "checkpoint_info")
        _print_json(checkpoint_info(_checkpoint_arg(ckpt)))
        return 0
    with ProjectStore(_project_arg(project), readonly=True) as store:
        _print_json(project_info(store))
    return 0


def cmd_stylize(args) -> int:
    _print_json(_lazy("engine.style_cli", "stylize_command")(args))
    return 0


HANDLERS = {"gui": cmd_gui, "demo": cmd_demo, "import": cmd_import, "export": cmd_export,
            "export-model": cmd_export_model, "train": cmd_train,
            "predict": cmd_predict, "eval": cmd_eval, "info": cmd_info, "stylize": cmd_stylize,
            "verify": cmd_verify, "search": cmd_search}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("VISIONBENCH_DEBUG", "") not in ("", "0")
    try:
        args = _parse(_with_default_command(argv))
        return HANDLERS[args.command](args)
    except _UsageError as exc:
        print(str(exc).rstrip(), file=sys.stderr)
        return 2
    except _Reported as exc:
        return exc.code
    except SystemExit as exc:  # --help prints and exits 0
        return int(exc.code or 0) if isinstance(exc.code, int) or exc.code is None else 2
    except BadInput as exc:
        print(f"visionbench: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `visionbench info | head -1`: the reader has all it wanted
        _silence_stdout()
        return 0
    except FileNotFoundError as exc:
        print(f"visionbench: {exc.filename}: file not found", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.filename is None:  # not about a file the user named: treat as internal below
            return _internal(exc, debug)
        # the user's environment (permissions, a full disk, a file where a folder must be), not a bug
        print(f"visionbench: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("visionbench: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the boundary that turns crashes into exit code 1
        return _internal(exc, debug)


def _silence_stdout() -> None:
    # Python flushes stdout again at exit; into the closed pipe that would raise once more
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _internal(exc: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exception(exc)
    else:
        print(f"visionbench: internal error: {type(exc).__name__}: {exc} "
              "(run with --debug for the traceback)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
