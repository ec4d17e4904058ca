"""The workbench window: canvas in the middle, docks around it, actions from one table.

MainWindow only wires things: the AnnotationController changes the project and reports what
changed; the canvas and panels show it and send the user's requests back to the controller.
Background work goes through `window.jobs` (one JobBridge; other panels use it too). The window
owns the store it is given and closes it, after stopping jobs, thumbnail and canvas threads.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (QApplication, QCheckBox, QDockWidget, QFileDialog, QLabel, QMainWindow, QMenu,
                               QMessageBox, QSlider, QSpinBox, QToolBar, QWidget)

from app.canvas import Canvas
from app.controllers.actions import CATEGORY_KEYS, TOOL_SPECS, build_actions
from app.controllers.add_files import AddFilesController
from app.controllers.annotation_controller import AnnotationController
from app.controllers.assist_controller import AssistController
from app.controllers.box_mask import BoxMaskController
from app.controllers.translate import TranslateController
from app.controllers.label_loop import LabelLoopController
from app.controllers.file_controller import FileController
from app.controllers.labeling import LabelingController
from app.controllers.models_controller import ModelsController
from app.controllers.pretrained import PretrainedController
from app.controllers.style_controller import StyleController
from app.error_dialog import show_error
from app.help_dialog import HelpDialog
from app.jobs_bridge import JobBridge
from app.panels.annotations import AnnotationsPanel
from app.panels.browser import BrowserPanel
from app.panels.categories import CategoriesPanel
from app.panels.jobs_panel import JobsPanel
from app.panels.properties import PropertiesPanel
from app.style import STYLE_SHEET
from app.thumbnails import ThumbnailLoader
from engine.annotations.errors import BadInput
from engine.annotations.store import ProjectStore

LAYOUT_VERSION = 1  # bump when docks are renamed so an old saved layout is ignored
_OPEN_WINDOWS: list["MainWindow"] = []  # windows opened by File > Open, kept alive until closed


class MainWindow(QMainWindow):
    def __init__(self, store: ProjectStore, parent: QWidget | None = None, recent=None):
        super().__init__(parent)
        self.store = store
        self.controller = AnnotationController(store, self)
        self.loader = ThumbnailLoader(self)
        self.last_error_box = None
        self.help_dialog: HelpDialog | None = None
        self._closed = False
        self.layout_settings: QSettings | None = None
        self.last_add_report: dict | None = None
        self.setStyleSheet(STYLE_SHEET)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)

        self.canvas = Canvas(self)
        self.setCentralWidget(self.canvas)
        self.browser = BrowserPanel(store, self.loader, self)
        self.categories = CategoriesPanel(self.controller, self)
        self.annotations = AnnotationsPanel(self.controller, self)
        self.properties = PropertiesPanel(self.controller, self)

        self.actions_by_name = build_actions(self)
        # The canvas handles Del/Backspace itself (they drop the last vertex while drawing), so
        # the window-wide Delete shortcut only applies while the annotation list has focus.
        delete = self.actions_by_name["delete"]
        self.removeAction(delete)
        delete.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.annotations.addAction(delete)
        self.labeling = LabelingController(self)  # label prompt, current-category indicator
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self.docks: dict[str, QDockWidget] = {}
        self.add_panel("Images", self.browser, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.add_panel("Categories", self.categories)
        self.add_panel("Annotations", self.annotations)
        self.add_panel("Properties", self.properties)
        # one bridge for every background job of this window (training, prediction...): other
        # panels take `window.jobs` and are docked with add_panel
        self.jobs = JobBridge(self)
        self.jobs_panel = JobsPanel(self.jobs, self)
        self.add_panel("Jobs", self.jobs_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.docks["Jobs"].hide()  # the View menu shows it; it opens by itself when a job starts
        self.jobs.submitted.connect(lambda *_: self.docks["Jobs"].show())
        self.file = FileController(self, recent)  # new, import, export, recent, add images
        # detector views (NMS, inside R-CNN, YOLO grid, compare, evaluate): docks built on first use
        self.models = ModelsController(self)
        self.actions_by_name.update(self.models.actions)
        self.pretrained = PretrainedController(self)  # Models > Pretrained models…: Get, Add from file
        self.add_files = AddFilesController(self)  # File > Add images…, drop files/folders, paste an image
        self.actions_by_name.update({**self.pretrained.actions, **self.add_files.actions})
        self.file_menu.insertActions(self.actions_by_name["add_images"], list(self.add_files.actions.values()))
        self.models_menu.addAction(self.pretrained.action)
        self.assist = AssistController(self)  # pre-label and review proposals
        self.actions_by_name.update(self.assist.actions)
        self.label_loop = LabelLoopController(self)  # rounds of train, pre-label, review
        self.box_mask = BoxMaskController(self)  # Box → Mask with GrabCut or a model
        self.actions_by_name.update(self.box_mask.actions)
        self.edit_menu.insertActions(self.actions_by_name["to_polygons"], list(self.box_mask.actions.values()))
        self.actions_by_name["label_loop"] = self.label_loop.action
        from app.lessons.controller import LessonsController

        self.lessons = LessonsController(self)  # the Lessons menu and its player
        self.translate = TranslateController(self)  # Translate with… (image-to-image models)
        self.actions_by_name["translate_with"] = self.translate.action
        self.models_menu.addActions([self.assist.actions["prelabel"], self.assist.actions["review"],
                                     self.label_loop.action, self.translate.action])
        self.models_menu.addSeparator()
        self.models_menu.addActions(list(self.models.actions.values()))
        self.style_transfer = StyleController(self)  # Style transfer… and Stylise with…: a dock built on first use
        self.actions_by_name.update(self.style_transfer.actions)
        self.models_menu.addActions(list(self.style_transfer.actions.values()))
        self.images_menu.addSeparator()
        self.images_menu.addActions([self.assist.actions["next_proposals"], self.assist.actions["prev_proposals"]])
        self.edit_menu.addAction(self.assist.actions["accept_above"])
        self.tabifyDockWidget(self.docks["Annotations"], self.docks["Properties"])
        self.docks["Annotations"].raise_()
        self.resizeDocks([self.docks["Images"], self.docks["Categories"]], [250, 380], Qt.Orientation.Horizontal)
        self._connect()

        self.canvas.set_categories(store.categories())
        self.setWindowTitle(f"Visionbench — {store.path}")
        self.resize(1500, 920)
        self.fit_to_screen()
        self._default_layout = self.saveState(LAYOUT_VERSION)
        self.browser.refresh()
        first = self.controller.order[0] if self.controller.order else None
        if first is not None:
            self.controller.open_image(first)
        self.actions_by_name["tool_select"].setChecked(True)
        self._history_changed()
        self.labeling.show_current()

    # ---- layout -----------------------------------------------------------------------------
    def add_panel(self, title: str, widget: QWidget,
                  area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea) -> QDockWidget:
        """Dock `widget` under `title`; the View menu gets a toggle for it. Returns the dock."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks[title] = dock
        self.panels_menu.addAction(dock.toggleViewAction())
        return dock

    def _build_menus(self) -> None:
        a = self.actions_by_name
        bar = self.menuBar()
        file_menu = self.file_menu = bar.addMenu("&File")
        file_menu.addAction(a["new_project"])
        file_menu.addAction(a["open_project"])
        self.recent_menu: QMenu = file_menu.addMenu("Recent projects")
        self.recent_menu.aboutToShow.connect(lambda: self.file.fill_recent_menu(self.recent_menu))
        file_menu.addSeparator()
        for name in ("import", "export", "add_images", None, "quit"):
            file_menu.addSeparator() if name is None else file_menu.addAction(a[name])
        edit = self.edit_menu = bar.addMenu("&Edit")
        for name in ("undo", "redo", None, "copy", "paste", "duplicate", "delete", "select_all", None,
                     "merge", "split", "to_mask", "to_polygons", None, "accept_proposals", "hide", "lock"):
            edit.addSeparator() if name is None else edit.addAction(a[name])
        tools = bar.addMenu("&Tools")
        for s in TOOL_SPECS:
            tools.addAction(a[s.name])
        images = self.images_menu = bar.addMenu("&Image")
        for name in ("next_image", "prev_image", None, "mark_in_progress", "mark_done", "mark_reviewed"):
            images.addSeparator() if name is None else images.addAction(a[name])
        view = bar.addMenu("&View")
        for name in ("fit", "zoom_1", "fill", "brush_smaller", "brush_larger", None, "label_prompt", "reset_layout"):
            view.addSeparator() if name is None else view.addAction(a[name])
        view.addSeparator()
        self.panels_menu: QMenu = view.addMenu("Panels")
        self.models_menu: QMenu = bar.addMenu("&Models")
        self.models_menu.addAction(a["train_panel"])
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(a["help"])
        help_menu.addAction(a["about"])

    def _build_toolbar(self) -> None:
        a = self.actions_by_name
        tb = QToolBar("Tools", self)
        tb.setObjectName("toolbar_tools")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.addWidget(self.labeling.indicator)  # first: never pushed into the overflow menu
        tb.addSeparator()
        for s in TOOL_SPECS:
            tb.addAction(a[s.name])
        tb.addSeparator()
        for name in ("undo", "redo"):
            tb.addAction(a[name])
        tb.addSeparator()
        tb.addWidget(QLabel(" Opacity "))
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(30)
        self.opacity.setFixedWidth(110)
        self.opacity.setToolTip("Fill opacity of shapes")
        tb.addWidget(self.opacity)
        self.fill_box = QCheckBox("Fill", self)
        self.fill_box.setChecked(True)
        self.fill_box.setToolTip(a["fill"].toolTip())
        tb.addWidget(self.fill_box)
        tb.addWidget(QLabel(" Brush "))
        self.brush = QSpinBox(self)
        self.brush.setRange(1, 500)
        self.brush.setValue(12)
        self.brush.setSuffix(" px")
        self.brush.setToolTip("Brush and eraser radius in image pixels")
        tb.addWidget(self.brush)
        tb.addSeparator()
        tb.addAction(a["fit"])
        tb.addAction(a["zoom_1"])
        self.addToolBar(tb)
        self.toolbar = tb
        nav = QToolBar("Image", self)
        nav.setObjectName("toolbar_image")
        nav.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for name in ("prev_image", "next_image", "mark_done", "mark_reviewed"):
            nav.addAction(a[name])
        self.addToolBar(nav)
        a["fill"].setChecked(True)

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.image_label = QLabel("no image", self)
        self.cursor_label = QLabel("", self)
        self.zoom_label = QLabel("100%", self)
        self.zoom_label.setMinimumWidth(60)
        for w in (self.image_label, self.cursor_label, self.zoom_label):
            sb.addPermanentWidget(w)

    # ---- wiring -----------------------------------------------------------------------------
    def _connect(self) -> None:
        c, a, cv = self.controller, self.actions_by_name, self.canvas
        c.imageOpened.connect(self._image_opened)
        c.annotationsChanged.connect(cv.apply_changes)
        c.annotationsChanged.connect(lambda *_: c.image and self.browser.model.set_shape_count(
            c.image.id, c.count()))
        c.categoriesChanged.connect(self._categories_changed)
        c.imageUpdated.connect(self._image_updated)
        c.historyChanged.connect(self._history_changed)
        c.message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        c.failed.connect(self._show_failure)

        cv.editRequested.connect(self.labeling.edit_requested)  # a drawn shape may ask for its label
        cv.toolChanged.connect(self._tool_changed)
        cv.selectionChanged.connect(self._canvas_selection)
        cv.zoomChanged.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))
        cv.cursorMoved.connect(lambda x, y: self.cursor_label.setText(f"x {x:.1f}  y {y:.1f}"))
        self.annotations.selectionChangedIds.connect(self._list_selection)
        self.categories.currentCategoryChanged.connect(cv.set_current_category)
        self.categories.visibilityChanged.connect(cv.set_category_visible)
        self.browser.imageActivated.connect(self._browser_pick)
        self.browser.orderChanged.connect(c.set_order)

        self.opacity.valueChanged.connect(lambda v: cv.set_opacity(v / 100.0))
        self.fill_box.toggled.connect(self._set_fill)
        a["fill"].toggled.connect(self._set_fill)
        self.brush.valueChanged.connect(cv.set_brush_radius)
        cv.set_opacity(self.opacity.value() / 100.0)
        cv.set_brush_radius(self.brush.value())
        current = self.categories.current_id()
        if current is not None:
            cv.set_current_category(current)

        for s in TOOL_SPECS:
            tool = s.name.removeprefix("tool_")
            a[s.name].triggered.connect(lambda _=False, t=tool: cv.set_tool(t))
        for key in CATEGORY_KEYS:
            a[f"category_{key}"].triggered.connect(lambda _=False, n=int(key): self.categories.pick_number(n))
        sel = self.selected_ids
        a["undo"].triggered.connect(c.undo)
        a["redo"].triggered.connect(c.redo)
        a["copy"].triggered.connect(lambda: c.copy(sel()))
        a["paste"].triggered.connect(self.paste)
        a["duplicate"].triggered.connect(lambda: c.duplicate(sel()))
        a["delete"].triggered.connect(lambda: c.delete(sel()))
        a["select_all"].triggered.connect(lambda: self._select([x.id for x in c.annotations() if not x.hidden]))
        a["merge"].triggered.connect(lambda: c.merge(sel()))
        a["split"].triggered.connect(lambda: c.split(sel()))
        a["to_mask"].triggered.connect(lambda: c.to_mask(sel()))
        a["to_polygons"].triggered.connect(lambda: c.to_polygons(sel()))
        a["accept_proposals"].triggered.connect(lambda: c.accept_proposals(sel()))
        a["hide"].triggered.connect(self._toggle_hidden)
        a["lock"].triggered.connect(self._toggle_locked)
        a["next_image"].triggered.connect(lambda: c.step_image(+1) or self._at_end("last"))
        a["prev_image"].triggered.connect(lambda: c.step_image(-1) or self._at_end("first"))
        a["mark_done"].triggered.connect(lambda: c.set_status("done"))
        a["mark_reviewed"].triggered.connect(lambda: c.set_status("reviewed"))
        a["mark_in_progress"].triggered.connect(lambda: c.set_status("in_progress"))
        a["brush_smaller"].triggered.connect(lambda: self.brush.setValue(max(1, round(self.brush.value() / 1.2))))
        a["brush_larger"].triggered.connect(lambda: self.brush.setValue(max(self.brush.value() + 1,
                                                                          round(self.brush.value() * 1.2))))
        a["fit"].triggered.connect(cv.fit)
        a["zoom_1"].triggered.connect(lambda: cv.zoom_to(1.0))
        a["help"].triggered.connect(self.show_help)
        a["about"].triggered.connect(self.show_about)
        a["reset_layout"].triggered.connect(self.reset_layout)
        a["label_prompt"].setChecked(self.labeling.ask)
        a["label_prompt"].toggled.connect(self.labeling.set_ask)
        a["train_panel"].triggered.connect(self.open_training_panel)
        a["quit"].triggered.connect(self.close)
        a["open_project"].triggered.connect(self.open_project_dialog)
        a["new_project"].triggered.connect(self.file.new_project_dialog)
        a["import"].triggered.connect(lambda: self.file.import_dialog())
        a["export"].triggered.connect(self.file.export_dialog)
        a["add_images"].triggered.connect(self.file.add_images_dialog)

    # ---- reactions --------------------------------------------------------------------------
    def _image_opened(self, img, anns) -> None:
        self.canvas.load(img, self.store.image_path(img), anns, self.store.categories())
        for cid in self.categories.ids():
            if not self.categories.is_visible(cid):
                self.canvas.set_category_visible(cid, False)
        self.browser.set_current(img.id)
        self.image_label.setText(f"{Path(img.path).name} · {img.width}×{img.height}")
        self.setWindowTitle(f"Visionbench — {self.store.path} — {img.path}")
        problem = self.canvas.message_text()
        if problem:
            self.statusBar().showMessage(problem, 10000)
        self.assist.image_shown()

    def _image_updated(self, rec) -> None:
        self.browser.update_record(rec)

    def _categories_changed(self, cats) -> None:
        self.canvas.set_categories(cats)
        self.browser.set_categories(cats)
        self.browser.refresh()  # a deleted category takes its shapes along: counts and filters change

    def _history_changed(self) -> None:
        h, a = self.controller.history, self.actions_by_name
        a["undo"].setEnabled(h.can_undo)
        a["redo"].setEnabled(h.can_redo)
        a["undo"].setText(f"Undo {h.undo_label()}" if h.can_undo else "Undo")
        a["redo"].setText(f"Redo {h.redo_label()}" if h.can_redo else "Redo")

    def _show_failure(self, title: str, message: str) -> None:
        # the canvas may still show its preview of the refused edit: show what the store holds
        self.canvas.set_annotations(self.controller.annotations())
        self.last_error_box = show_error(self, title, message)

    def _canvas_selection(self, ids) -> None:
        self.annotations.set_selection(list(ids))
        self.properties.show_annotations(list(ids))

    def _list_selection(self, ids) -> None:
        self.canvas.select(list(ids))
        self.properties.show_annotations(list(ids))

    def _select(self, ids: list[int]) -> None:
        before = self.canvas.selected_ids()
        self.canvas.select(ids)
        if self.canvas.selected_ids() == before:  # no selectionChanged: tell the list and properties here
            self.annotations.set_selection(ids)
            self.properties.show_annotations(ids)

    def _browser_pick(self, image_id: int) -> None:
        if self.controller.image is None or self.controller.image.id != image_id:
            self.controller.open_image(image_id)

    def _tool_changed(self, tool: str) -> None:
        """The toolbar's checked tool follows the canvas, whoever switched it."""
        act = self.actions_by_name.get(f"tool_{tool}")
        if act is not None and not act.isChecked():
            act.setChecked(True)  # setChecked does not fire `triggered`: no loop back to the canvas

    def _set_fill(self, on: bool) -> None:
        for w in (self.fill_box, self.actions_by_name["fill"]):
            w.blockSignals(True)
            w.setChecked(on)
            w.blockSignals(False)
        self.canvas.set_fill(on)

    def _at_end(self, which: str) -> None:
        self.statusBar().showMessage(f"This is the {which} image of the list", 3000)

    def _toggle_hidden(self) -> None:
        ids = self.selected_ids()
        anns = [self.controller.annotation(i) for i in ids]
        if anns:
            self.controller.set_hidden(ids, not all(x.hidden for x in anns if x))

    def _toggle_locked(self) -> None:
        ids = self.selected_ids()
        anns = [self.controller.annotation(i) for i in ids]
        if anns:
            self.controller.set_locked(ids, not all(x.locked for x in anns if x))

    # ---- commands ---------------------------------------------------------------------------
    def selected_ids(self) -> list[int]:
        """The selection: the canvas's, else the annotation list's."""
        ids = list(self.canvas.selected_ids())
        return ids or self.annotations.selected_ids()

    def paste(self) -> None:
        if not self.controller.clipboard and self.add_files.clipboard_has_image():
            self.add_files.paste_image()  # no shapes copied, a picture on the clipboard: a new image
            return
        new = self.controller.paste()
        if new:
            self._select([x.id for x in new])

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a Visionbench project", str(self.store.root),
                                              "Visionbench projects (*.vbproj);;Annotation files (*.json *.xml)")
        if path:
            self.open_project(path)

    def open_project(self, path: str | Path) -> "MainWindow | None":
        """Open another project in a new window and close this one (None if it cannot be opened)."""
        if Path(path).absolute() == self.store.path:
            return self
        if Path(path).suffix.lower() in (".json", ".xml"):
            self.file.offer_file(path)  # an annotation file: import it into this project
            return None
        try:
            store = ProjectStore(path)
        except BadInput as exc:
            self._show_failure("Cannot open project", str(exc))
            return None
        win = MainWindow(store, recent=self.file.recent)
        if self.layout_settings is not None:
            win.use_layout_settings(self.layout_settings)
        _OPEN_WINDOWS.append(win)  # a top-level window lives as long as a Python reference does
        win.show()
        self.close()
        return win

    def add_images(self, folder: str | Path) -> int:
        """Add a folder's images in the background (FileController); returns the job id."""
        return self.file.add_images(folder)

    def project_changed(self) -> None:
        """An import changed categories, images and annotations at once: show the project anew."""
        c = self.controller
        c.categoriesChanged.emit(self.store.categories())
        current = c.image.id if c.image is not None else None
        if current is not None:
            c.open_image(current)
        elif c.order:
            c.open_image(c.order[0])

    def open_training_panel(self) -> QWidget | None:
        """Dock the training panel, built on first use: it loads the model registry (and torch),
        which takes seconds, so the window does not pay for it at start."""
        if "Train" not in self.docks:
            QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
            try:
                from app.panels.train_panel import TrainPanel

                panel = TrainPanel(self.jobs, lambda: self.store.path, lambda: self.controller.image,
                                   on_predicted=self.add_predictions, parent=self)
                from app.heap import settle_heap

                settle_heap()  # torch and the families are in: no full collection walks them mid-run
            except Exception as exc:  # noqa: BLE001 - a broken model install must not take the window down
                self._show_failure("Cannot open the training panel", f"{type(exc).__name__}: {exc}")
                return None
            finally:
                QApplication.restoreOverrideCursor()
            self.add_panel("Train", panel)
            # a tab beside Annotations/Properties: its live views need room the window may not have
            self.tabifyDockWidget(self.docks["Properties"], self.docks["Train"])
        dock = self.docks["Train"]
        dock.show()
        dock.raise_()
        return dock.widget()

    def add_predictions(self, anns: list) -> None:
        """Model proposals arrive as new annotations: one undoable step, like any edit."""
        if anns:
            self.controller.record("model proposals", add=list(anns))

    def shortcut_actions(self):
        return [act for act in self.actions_by_name.values() if act.shortcuts()]

    def show_help(self) -> HelpDialog:
        if self.help_dialog is None:
            self.help_dialog = HelpDialog(list(self.actions_by_name.values()), self)
        self.help_dialog.show()
        self.help_dialog.raise_()
        return self.help_dialog

    def show_about(self) -> QMessageBox:
        from app.about import about_text

        box = QMessageBox(QMessageBox.Icon.Information, "About Visionbench", about_text(),
                          QMessageBox.StandardButton.Close, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.open()
        self.last_error_box = box
        return box

    def reset_layout(self) -> None:
        """Every dock back where it started (docks opened later stay, floating ones come back)."""
        self.restoreState(self._default_layout, LAYOUT_VERSION)
        for title in ("Images", "Categories", "Annotations", "Properties"):
            self.docks[title].setFloating(False)
            self.docks[title].show()
        self.docks["Annotations"].raise_()
        self.fit_to_screen()

    def fit_to_screen(self) -> None:
        """Never larger than the screen's free area, and on it."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            return
        free = screen.availableGeometry()
        frame = self.frameGeometry().size() - self.geometry().size()  # title bar and borders
        w = min(self.width(), free.width() - frame.width())
        h = min(self.height(), free.height() - frame.height())
        if self.minimumSizeHint().width() > w:
            self.annotations.setMinimumWidth(0)  # a small screen: the list's columns may scroll
        if self.minimumSizeHint().width() > w and not self.docks["Images"].isFloating():
            # a very small screen: one column of panels beside the canvas instead of two
            self.tabifyDockWidget(self.docks["Categories"], self.docks["Images"])
            self.docks["Categories"].raise_()
        if (w, h) != (self.width(), self.height()):
            self.resize(max(w, 400), max(h, 300))
        x = min(max(self.x(), free.left()), max(free.left(), free.right() - self.frameGeometry().width() + 1))
        y = min(max(self.y(), free.top()), max(free.top(), free.bottom() - self.frameGeometry().height() + 1))
        if (x, y) != (self.x(), self.y()):
            self.move(x, y)

    # ---- layout memory (opt-in: app.main turns it on; tests leave it off) -------------------
    def use_layout_settings(self, settings: QSettings) -> None:
        """Restore window size and dock layout from `settings` now and save them on close."""
        self.layout_settings = settings
        self.file.recent.use_settings(settings)
        geometry, state = settings.value("window/geometry"), settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
            self.fit_to_screen()  # saved on a larger screen, or with a monitor since unplugged
        if state is not None:
            self.restoreState(state, LAYOUT_VERSION)
        ask = settings.value("labeling/ask_label")
        if ask is not None:
            self.labeling.set_ask(str(ask).lower() in ("true", "1"))

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self in _OPEN_WINDOWS:
            _OPEN_WINDOWS.remove(self)
        if self.layout_settings is not None and not self._closed:
            self.layout_settings.setValue("window/geometry", self.saveGeometry())
            self.layout_settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
            self.layout_settings.setValue("labeling/ask_label", self.labeling.ask)
        if not self._closed:
            self._closed = True
            self.models.shutdown()
            self.style_transfer.shutdown()
            self.lessons.shutdown()
            self.jobs.shutdown()
            self.loader.shutdown()  # no worker may touch a closed store or a deleted model
            shutdown = getattr(self.canvas, "shutdown", None)
            if shutdown:
                shutdown()
            self.store.close()
        super().closeEvent(event)
