"""Small inputs with large costs (issue 14, point 5): the worst memory and time of an import.

    python -m benchmarks.robustness

Each case is a source under 10 MB built to be expensive, imported with the `visionbench` command
in a child process (as a user would run it). Per case: the exit code, the wall time and the peak
resident memory of the child (ru_maxrss of RUSAGE_CHILDREN, taken in a wrapper process that runs
only that child). The JSON ends with ``worst_rss_mb_small_inputs`` and ``worst_s_small_inputs``
(the goal: at most 2,048 MB and 10 s), and the same for the one large input (a 100 MB YOLO label
file), which must be refused as quickly.

Wall time is what the goal speaks of; `cpu_s` (user + system of the child) shows how much of it
was this work rather than the other processes of a shared machine.

Cases: a 1 KB data.yaml alias bomb; a 4 MB VOC XML whose <pose> is one long text; a 30000 x 30000
class PNG (under 1 MB, written row by row) for a header-only image of that size; three COCO RLE
masks on a header-only 40000 x 40000 image; a YOLO label file of 1.9 MB (100,000 boxes on one
image: the largest label file accepted, 2 MB, costs the most time of all); and the 100 MB YOLO
label file.
"""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

# Runs one command and reports its own children's peak memory: a wrapper per case, so that the
# peak is that command's alone (RUSAGE_CHILDREN keeps the largest child ever waited for).
WRAPPER = r"""
import json, resource, subprocess, sys, time
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
s = time.perf_counter() - t
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": p.returncode, "s": s, "cpu_s": u.ru_utime + u.ru_stime, "rss_mb": u.ru_maxrss / 1024,
                  "stderr": p.stderr[-300:]}))
"""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def header_only_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height, with almost no pixel data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + _chunk(b"IEND", b""))
    return path


def zero_png(path: Path, width: int, height: int) -> Path:
    """A complete 8-bit gray PNG of zeros, compressed row by row (no width x height buffer)."""
    z = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    parts = [z.compress(row) for _ in range(height)]
    data = b"".join(parts) + z.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))
    return path


def small_png(path: Path, width: int = 64, height: int = 48) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height)).save(path)
    return path


def yaml_alias_bomb(root: Path) -> tuple[str, Path]:
    src = root / "yaml_bomb"
    small_png(src / "images" / "train" / "a.png")
    (src / "labels" / "train").mkdir(parents=True)
    (src / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{', '.join([f'*{prev}'] * 9)}]")
    lines.append("names: [*i]")
    (src / "data.yaml").write_text("\n".join(lines) + "\n")
    return "yolo", src


def voc_long_pose(root: Path) -> tuple[str, Path]:
    src = root / "voc_pose"
    small_png(src / "JPEGImages" / "a.png")
    (src / "Annotations").mkdir(parents=True)
    pose = "&amp;" * (4 * 1024 * 1024 // 5)  # entity references make expat hand the text over in small pieces
    (src / "Annotations" / "a.xml").write_text(
        "<annotation><filename>a.png</filename><size><width>64</width><height>48</height></size>"
        f"<object><name>cat</name><pose>{pose}</pose><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax>"
        "<ymax>9</ymax></bndbox></object></annotation>\n")
    return "voc", src


def huge_mask_png(root: Path) -> tuple[str, Path]:
    src = root / "mask_png"
    header_only_png(src / "JPEGImages" / "a.png", 30000, 30000)
    zero_png(src / "SegmentationClass" / "a.png", 30000, 30000)
    (src / "class_names.txt").write_text("_background_\ncat\n")
    return "masks", src


def rle_on_huge_image(root: Path) -> tuple[str, Path]:
    src = root / "coco_rle"
    header_only_png(src / "images" / "a.png", 40000, 40000)
    n = 40000 * 40000
    # compressed RLE of "half the image background, then a 1000-pixel run, then background": built
    # with the counts encoder of the format (5 bits a character, deltas from two runs back)
    counts = _rle_string([n // 2, 1000, n // 2 - 1000])
    anns = [{"id": i + 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 10, 10],
             "segmentation": {"size": [40000, 40000], "counts": counts}} for i in range(3)]
    (src / "annotations.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 40000, "height": 40000}],
        "categories": [{"id": 1, "name": "cat"}], "annotations": anns}))
    return "coco", src


def _rle_string(runs: list[int]) -> str:
    out = []
    for i, x in enumerate(runs):
        if i > 2:
            x -= runs[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = not ((x == 0 and not c & 0x10) or (x == -1 and c & 0x10))
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def yolo_lines(root: Path, name: str, megabytes: float) -> tuple[str, Path]:
    src = root / name
    small_png(src / "images" / "train" / "a.png")
    (src / "labels" / "train").mkdir(parents=True)
    line = b"0 0.5 0.5 0.25 0.25\n"
    (src / "labels" / "train" / "a.txt").write_bytes(line * int(megabytes * 1024 * 1024 / len(line)))
    (src / "data.yaml").write_text("names: [cat]\n")
    return "yolo", src


def measure(fmt: str, src: Path, project: Path) -> dict:
    cmd = [sys.executable, "-m", "engine.cli", "import", fmt, str(src), "--project", str(project)]
    out = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    size = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    result["input_mb"] = round(size / 1e6, 3)
    result["s"] = round(result["s"], 2)
    result["cpu_s"] = round(result["cpu_s"], 2)
    result["rss_mb"] = round(result["rss_mb"], 1)
    return result


def main() -> None:
    small = {"yaml_alias_bomb": yaml_alias_bomb, "voc_4mb_pose": voc_long_pose,
             "mask_png_30000x30000": huge_mask_png, "coco_3_rle_on_40000x40000": rle_on_huge_image,
             "yolo_1.9mb_label_file": lambda r: yolo_lines(r, "yolo_1_9mb", 1.9)}
    cases: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, make in small.items():
            fmt, src = make(root)
            cases[name] = measure(fmt, src, root / f"{name}.vbproj")
        fmt, src = yolo_lines(root, "yolo_100mb", 100)
        large = measure(fmt, src, root / "large.vbproj")
    print(json.dumps({
        "cases": cases,
        "large_input_yolo_100mb_label_file": large,
        "worst_rss_mb_small_inputs": max(c["rss_mb"] for c in cases.values()),
        "worst_s_small_inputs": max(c["s"] for c in cases.values()),
        "all_small_inputs_under_10mb": all(c["input_mb"] < 10 for c in cases.values()),
        "goal": {"rss_mb": 2048, "s": 10},
    }, indent=2))


if __name__ == "__main__":
    main()
