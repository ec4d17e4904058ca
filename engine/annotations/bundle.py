"""What a format reader produces and what the store imports in one transaction.

Readers never touch the store: they parse and validate into an ImportBundle (collecting
Problems), then `import_bundle` writes it all-or-nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import ImportFailed, Problem
from .model import Annotation, Category, default_color
from .progress import ticking
from .store import ProjectStore


@dataclass
class ImageEntry:
    """An image to import. `file` is the image's absolute path on disk.

    Its annotations carry `category_id` = the id of a Category in the bundle (not the project)
    and image_id 0 (set on import).
    """

    file: Path
    width: int
    height: int
    split: str = "train"
    status: str = "new"
    annotations: list[Annotation] = field(default_factory=list)


@dataclass
class ImportBundle:
    categories: list[Category] = field(default_factory=list)
    images: list[ImageEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # invalid parts found while reading

    def category_names(self) -> dict[int, str]:
        return {c.id: c.name for c in self.categories}


@dataclass
class ImportReport:
    images_added: int = 0
    images_updated: int = 0
    annotations_added: int = 0
    categories_added: int = 0
    skipped: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"images_added": self.images_added, "images_updated": self.images_updated,
                "annotations_added": self.annotations_added, "categories_added": self.categories_added,
                "skipped": [str(p) for p in self.skipped]}


def import_bundle(store: ProjectStore, bundle: ImportBundle, skip_invalid: bool = False,
                  progress=None) -> ImportReport:
    """Write a bundle into the store in one transaction.

    With problems and not `skip_invalid`: raises ImportFailed and the project is unchanged.
    With `skip_invalid`: the reader already left the invalid parts out; they are listed in the report.
    An image already in the project (same path) keeps its record and gets the new annotations.
    `progress(done, total, "store")`, when given, is called per image.
    """
    if bundle.problems and not skip_invalid:
        raise ImportFailed(bundle.problems)
    report = ImportReport(skipped=list(bundle.problems))
    names = bundle.category_names()
    with store.transaction():
        cat_ids: dict[int, int] = {}
        existing = {c.name: c for c in store.categories()}
        n = len(existing)
        for c in bundle.categories:
            if c.name in existing:
                cat_ids[c.id] = existing[c.name].id
            else:
                new = store.add_category(c.name, c.color or default_color(n))
                n += 1
                existing[c.name] = new
                cat_ids[c.id] = new.id
                report.categories_added += 1
        pending: list[Annotation] = []
        remap: list[tuple[int, int]] = []  # (image id, category id) in the project, per pending annotation
        known = {rec.path: rec for rec in store.images()}  # one query instead of one per image
        for entry in ticking(bundle.images, progress, "store"):
            rel = store._rel(entry.file)
            rec = known.get(rel)
            if rec is None:
                [rec] = store.insert_images([(rel, entry.width, entry.height, entry.split, entry.status)])
                known[rel] = rec
                report.images_added += 1
            else:
                report.images_updated += 1
            for a in entry.annotations:
                if a.category_id not in cat_ids:
                    raise ImportFailed([Problem(str(entry.file), "category",
                                                f"unknown category id {a.category_id} ({names.get(a.category_id)})")])
                pending.append(a)
                remap.append((rec.id, cat_ids[a.category_id]))
        store.bulk_insert_annotations(pending, remap)
        report.annotations_added = len(pending)
    return report
