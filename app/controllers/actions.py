"""Every command of the workbench in one table: name, menu text, shortcuts, group, tip.

The main window turns the table into QActions, the menus and toolbar show them, and the help
dialog (F1) lists them, so a shortcut is written down exactly once and the help never goes
stale. Shortcut choices follow what LabelMe and CVAT users expect where they agree:
D / A (and PageDown / PageUp) step through images like CVAT; Ctrl+R / Ctrl+N also start a
rectangle / polygon like LabelMe; single letters pick tools; 1-9 pick categories, so the
1:1 zoom is Ctrl+1 and fit is F (or Ctrl+0).
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QWidget


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    shortcuts: tuple[str, ...] = ()
    group: str = "Edit"
    tip: str = ""
    checkable: bool = False
    short: str = ""  # toolbar label when the menu text is too long


TOOL_SPECS = (
    ActionSpec("tool_select", "Select / move", ("V",), "Tools", "Select, move and reshape shapes", True,
               short="Select"),
    ActionSpec("tool_box", "Box", ("R", "Ctrl+R"), "Tools", "Drag a rectangle", True),
    ActionSpec("tool_polygon", "Polygon", ("P", "Ctrl+N"), "Tools",
               "Click vertices; Enter or click the first point closes", True),
    ActionSpec("tool_point", "Point", ("O",), "Tools", "Click to place a point", True),
    ActionSpec("tool_polyline", "Polyline", ("L",), "Tools", "Click vertices; Enter finishes", True),
    ActionSpec("tool_brush", "Brush", ("B",), "Tools", "Paint a mask ([ and ] change the radius)", True),
    ActionSpec("tool_eraser", "Eraser", ("E",), "Tools", "Erase from masks", True),
    ActionSpec("tool_grabcut", "GrabCut", ("G",), "Tools", "Drag a box; GrabCut segments the object inside", True),
)

SPECS = TOOL_SPECS + (
    # edit
    ActionSpec("undo", "Undo", ("Ctrl+Z",), "Edit", "Undo the last edit (unbounded, across images)", short="Undo"),
    ActionSpec("redo", "Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Edit", "Redo the last undone edit", short="Redo"),
    ActionSpec("copy", "Copy", ("Ctrl+C",), "Edit", "Copy the selected shapes"),
    ActionSpec("paste", "Paste", ("Ctrl+V",), "Edit", "Paste onto this image (clipped to its size)"),
    ActionSpec("duplicate", "Duplicate", ("Ctrl+D",), "Edit", "Copy the selected shapes 10 px right and down"),
    ActionSpec("delete", "Delete", ("Del", "Backspace"), "Edit", "Delete the selected shapes"),
    ActionSpec("select_all", "Select all", ("Ctrl+A",), "Edit", "Select every shape of this image"),
    ActionSpec("merge", "Merge", ("Ctrl+M",), "Shapes", "Union of the selected boxes/polygons/masks as one mask"),
    ActionSpec("split", "Split", ("Ctrl+Shift+M",), "Shapes", "Split masks/polygons into connected parts"),
    ActionSpec("to_mask", "Polygon → Mask", ("Ctrl+K",), "Shapes", "Convert polygons and boxes to masks"),
    ActionSpec("to_polygons", "Mask → Polygons", ("Ctrl+Shift+K",), "Shapes", "Trace masks as polygons"),
    ActionSpec("accept_proposals", "Accept proposals", ("Ctrl+Shift+A",), "Shapes",
               "Model proposals (selected, or all on this image) become annotations; Del rejects"),
    ActionSpec("hide", "Hide / show selected", ("H",), "Shapes", "Toggle visibility of the selected shapes"),
    ActionSpec("lock", "Lock / unlock selected", ("Ctrl+L",), "Shapes", "Locked shapes cannot be moved or deleted"),
    # images
    ActionSpec("next_image", "Next image", ("D", "PgDown"), "Images", "Open the next image of the list",
               short="Next ▶"),
    ActionSpec("prev_image", "Previous image", ("A", "PgUp"), "Images", "Open the previous image of the list",
               short="◀ Prev"),
    ActionSpec("mark_done", "Mark done", ("Ctrl+Return", "Ctrl+Enter"), "Images", "This image is fully annotated",
               short="✓ Done"),
    ActionSpec("mark_reviewed", "Mark reviewed", ("Ctrl+Shift+Return", "Ctrl+Shift+Enter"), "Images",
               "A second person checked it", short="Reviewed"),
    ActionSpec("mark_in_progress", "Mark in progress", (), "Images", "Reopen the image for work"),
    # view
    ActionSpec("fit", "Fit to window", ("F", "Ctrl+0"), "View", "Show the whole image", short="Fit"),
    ActionSpec("zoom_1", "Actual pixels (1:1)", ("Ctrl+1",), "View", "One image pixel per screen pixel", short="1:1"),
    ActionSpec("brush_smaller", "Smaller brush", ("[",), "View", "Brush/eraser radius −20 %"),
    ActionSpec("brush_larger", "Larger brush", ("]",), "View", "Brush/eraser radius +20 %"),
    ActionSpec("fill", "Fill shapes", ("Shift+F",), "View", "Fill shapes with their colour", True),
    ActionSpec("label_prompt", "Ask for a label after drawing", (), "View",
               "On: each new shape asks for its label (recent ones first, type to filter); off: it takes the "
               "current category", True),
    ActionSpec("reset_layout", "Reset layout", (), "View", "Put every panel back where it was at the start"),
    ActionSpec("train_panel", "Train && predict…", ("Ctrl+T",), "Models",
               "Train a model on the annotated images in the background; predict proposals", short="Train"),
    ActionSpec("help", "Keyboard shortcuts", ("F1",), "Help", "This list"),
    ActionSpec("about", "About Visionbench", (), "Help", "Version, and where the documentation is"),
    ActionSpec("new_project", "New project…", ("Ctrl+Alt+N",), "File", "Create an empty project and open it"),
    ActionSpec("open_project", "Open project…", ("Ctrl+O",), "File",
               "Open another .vbproj in place of this one (an annotation file is offered for import)"),
    ActionSpec("import", "Import…", ("Ctrl+Shift+I",), "File",
               "Import COCO, VOC, YOLO, LabelMe or mask PNG annotations (problems are listed first)"),
    ActionSpec("export", "Export…", ("Ctrl+E",), "File", "Export the annotations (all or one split) in a format"),
    ActionSpec("add_images", "Add images from folder…", ("Ctrl+I",), "File",
               "Add every image under a folder (read in the background)"),
    ActionSpec("quit", "Quit", ("Ctrl+Q",), "File", "Close the workbench (everything is saved already)"),
)

CATEGORY_KEYS = tuple(str(n) for n in range(1, 10))


def build_actions(parent: QWidget) -> dict[str, QAction]:
    """QActions for SPECS (plus 'category_1'..'category_9'), added to `parent` so shortcuts work."""
    out: dict[str, QAction] = {}
    tools = QActionGroup(parent)
    tools.setExclusive(True)
    for s in SPECS:
        act = QAction(s.text, parent)
        act.setObjectName(s.name)
        act.setShortcuts([QKeySequence(k) for k in s.shortcuts])
        keys = " or ".join(QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in s.shortcuts)
        act.setToolTip(f"{s.text} ({keys})" if keys else s.text)
        act.setStatusTip(s.tip)
        act.setCheckable(s.checkable)
        if s.short:
            act.setIconText(s.short)
        act.setProperty("group", s.group)
        act.setProperty("tip", s.tip)
        act.setProperty("command", s.text)  # the help's name for it (Undo's text changes to "Undo <edit>")
        if s.group == "Tools":
            tools.addAction(act)
        parent.addAction(act)
        out[s.name] = act
    for key in CATEGORY_KEYS:
        act = QAction(f"Category {key}", parent)
        act.setObjectName(f"category_{key}")
        act.setShortcut(QKeySequence(key))
        act.setProperty("group", "Categories")
        act.setProperty("tip", f"Use the {key}. category for new shapes")
        parent.addAction(act)
        out[f"category_{key}"] = act
    return out
