"""The lesson player: one window for every lesson (``engine.lessons``).

Text (Markdown from ``resources/lessons``) beside the live view; Back / Step / Run-Pause / Reset,
and a caption that says what the step changed. The lesson is prepared in a job (a network may run
for seconds); steps and clicks are cheap and answered on the GUI thread. Presentation mode shows
the same window full screen with large fonts and thick lines, driven by the keyboard alone:
Right / Left step, Space runs or pauses, Home resets, Esc leaves. The view exports to PNG and to
SVG (QSvgGenerator: the same painter draws into it, so text and lines stay vectors; images are
embedded as pixels).

``context`` supplies the image and the models (``app.lessons.controller.LessonsController``):
``lesson_input() -> LessonInput | None`` and ``model_options(needs) -> [(label, path or None)]``.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QImage, QKeySequence, QPainter, QShortcut
from PySide6.QtWidgets import (QApplication, QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QSplitter,
                               QTextBrowser, QVBoxLayout, QWidget)

from app.jobs_bridge import JobBridge
from app.lessons.painter import NORMAL, PRESENTATION, PaintStyle, paint_scene
from engine.jobs import Job
from engine.lessons import LessonEntry, lesson_text
from engine.lessons.scene import Scene

RUN_INTERVAL_MS = 1600


class SceneCanvas(QWidget):
    """Paints a Scene; reports presses and drags in panel world coordinates."""

    pressed = Signal(int, float, float)
    dragged = Signal(int, float, float)
    released = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.scene = Scene([])
        self.style_ = NORMAL
        self.maps = []
        self._panel: int | None = None
        self.setMinimumSize(400, 300)
        self.setMouseTracking(False)

    def set_scene(self, scene: Scene, style: PaintStyle) -> None:
        self.scene, self.style_ = scene, style
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        self.maps = paint_scene(p, self.scene, QRectF(self.rect()), self.style_)
        p.end()

    def _hit(self, pos: QPointF):
        for m in self.maps:
            if m.contains(pos.x(), pos.y()):
                return m
        return None

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        m = self._hit(event.position())
        if m is not None:
            self._panel = m.index
            self.pressed.emit(m.index, *m.to_world(event.position().x(), event.position().y()))

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._panel is not None and self._panel < len(self.maps):
            m = self.maps[self._panel]
            self.dragged.emit(m.index, *m.to_world(event.position().x(), event.position().y()))

    def mouseReleaseEvent(self, _event) -> None:  # noqa: N802 - Qt API
        if self._panel is not None:
            self._panel = None
            self.released.emit()


class LessonPlayer(QWidget):
    """Plays one lesson at a time. ``open_lesson(entry)``; signals ``ready()`` when a lesson is
    prepared and ``stepChanged(index, count)`` after every step."""

    ready = Signal()
    failed = Signal(str)
    stepChanged = Signal(int, int)

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.context = context
        self.entry: LessonEntry | None = None
        self.lesson = None
        self.index = 0
        self.presenting = False
        self.last_error: str | None = None
        self._job_id: int | None = None
        self._click_job: int | None = None
        self._prepared = False
        self.bridge = JobBridge(self)
        self.bridge.finished.connect(self._on_finished)
        self.bridge.progress.connect(lambda _i, prog: self._set_status(prog.message or "…"))
        self.timer = QTimer(self)
        self.timer.setInterval(RUN_INTERVAL_MS)
        self.timer.timeout.connect(self._tick)
        self.setWindowTitle("Lessons")

        self.title = QLabel("")
        self.model_label = QLabel("Model")
        self.model_combo = QComboBox()
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.model_combo.activated.connect(lambda _i: self.prepare())
        self.reload_button = QPushButton("Use current image")
        self.reload_button.setToolTip("Prepare the lesson again on the workbench's current image")
        self.reload_button.clicked.connect(self.prepare)
        self.back_button = QPushButton("◀ Back")
        self.step_button = QPushButton("Step ▶")
        self.run_button = QPushButton("Run")
        self.reset_button = QPushButton("Reset")
        self.present_button = QPushButton("Presentation (F5)")
        self.png_button = QPushButton("Export PNG…")
        self.svg_button = QPushButton("Export SVG…")
        self.back_button.clicked.connect(self.step_back)
        self.step_button.clicked.connect(self.step_forward)
        self.run_button.clicked.connect(self.toggle_run)
        self.reset_button.clicked.connect(self.reset)
        self.present_button.clicked.connect(lambda: self.set_presentation(True))
        self.png_button.clicked.connect(lambda: self._export_dialog("png"))
        self.svg_button.clicked.connect(lambda: self._export_dialog("svg"))

        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(False)
        self.canvas = SceneCanvas()
        self.canvas.pressed.connect(self._pressed)
        self.canvas.dragged.connect(self._dragged)
        self.canvas.released.connect(self._released)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.text)
        self.splitter.addWidget(self.canvas)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 3)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        self.bar = QWidget()
        bar = QHBoxLayout(self.bar)
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.title, 1)
        bar.addWidget(self.model_label)
        bar.addWidget(self.model_combo)
        bar.addWidget(self.reload_button)
        for b in (self.back_button, self.step_button, self.run_button, self.reset_button, self.present_button,
                  self.png_button, self.svg_button):
            bar.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.bar)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.caption)
        layout.addWidget(self.status)

        keys = ((Qt.Key.Key_Right, self.step_forward), (Qt.Key.Key_Left, self.step_back),
                (Qt.Key.Key_Space, self.toggle_run), (Qt.Key.Key_Home, self.reset),
                (Qt.Key.Key_Escape, lambda: self.set_presentation(False)),
                (Qt.Key.Key_F5, lambda: self.set_presentation(not self.presenting)))
        self.shortcuts = []
        for key, slot in keys:
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.ShortcutContext.WindowShortcut)
            sc.activated.connect(slot)
            self.shortcuts.append(sc)
        self._apply_fonts()
        self.resize(1400, 860)
        self._update_buttons()

    # -- opening and preparing ---------------------------------------------------------------------
    def open_lesson(self, entry: LessonEntry) -> None:
        """Show ``entry``'s text and prepare it on the context's current image."""
        self.pause()
        self.entry = entry
        self.title.setText(f"<b>{entry.title}</b>")
        self.setWindowTitle(f"Lesson — {entry.title}")
        self.text.setMarkdown(lesson_text(entry.key) or f"# {entry.title}")
        self.lesson = None if entry.waits_for else entry.create()
        self.index = 0
        self._fill_models()
        if self.lesson is None:
            self.canvas.set_scene(Scene([]), self._style())
            self._set_caption(f"This lesson waits for the {entry.waits_for} family.")
            self._update_buttons()
            return
        self.prepare()

    def _fill_models(self) -> None:
        self.model_combo.clear()
        needs = getattr(self.lesson, "needs", None)
        options = self.context.model_options(needs) if needs else []
        for label, path in options:
            self.model_combo.addItem(label, path)
        self.model_label.setVisible(bool(needs))
        self.model_combo.setVisible(bool(needs))

    def model_path(self) -> str | None:
        return self.model_combo.currentData() if self.model_combo.count() else None

    def prepare(self) -> None:
        """(Re)compute the lesson for the current image and model, in the background."""
        if self.lesson is None:
            return
        data = self.context.lesson_input()
        if data is None:
            self._set_status("No image is open: open or add an image in the workbench first.", error=True)
            return
        if self._job_id is not None:
            self.bridge.cancel(self._job_id)
        self._prepared = False
        self._update_buttons()
        name = data["name"] if isinstance(data, dict) else data.name
        self._set_status(f"preparing on {name}…")
        self._job_id = self.bridge.submit(Job(f"lesson {self.entry.key}", self.lesson.prepare, data=data,
                                              model_path=self.model_path()))

    def _on_finished(self, job_id: int, outcome) -> None:
        if job_id == self._click_job:
            self._click_job = None
            if outcome.state == "failed":
                self._set_status(f"The click could not be answered: {outcome.error}", error=True)
            elif outcome.state == "finished":
                self._set_status("")
                self._show()
            return
        if job_id != self._job_id:
            return
        self._job_id = None
        if outcome.state == "failed":
            self.last_error = outcome.error
            self._set_status(f"The lesson could not be prepared: {outcome.error}", error=True)
            self.failed.emit(outcome.error or "")
            return
        if outcome.state != "finished":
            return
        self._prepared = True
        self.index = min(self.index, max(self.lesson.step_count - 1, 0))
        notes = " ".join(self.lesson.notes)
        self._set_status(f"{self.lesson.input.name}. {notes}".strip())
        self._show()
        self.ready.emit()

    @property
    def is_ready(self) -> bool:
        return self._prepared

    # -- stepping ----------------------------------------------------------------------------------
    def step_forward(self) -> None:
        if self._prepared and self.index < self.lesson.step_count - 1:
            self.index += 1
            self._show()
        elif self.timer.isActive():
            self.pause()

    def step_back(self) -> None:
        if self._prepared and self.index > 0:
            self.index -= 1
            self._show()

    def reset(self) -> None:
        self.pause()
        if self._prepared:
            self.index = 0
            self._show()

    def toggle_run(self) -> None:
        if self.timer.isActive():
            self.pause()
        elif self._prepared:
            if self.index >= self.lesson.step_count - 1:
                self.index = 0
                self._show()
            self.timer.start()
            self.run_button.setText("Pause")

    def pause(self) -> None:
        self.timer.stop()
        self.run_button.setText("Run")

    def _tick(self) -> None:
        self.step_forward()
        if self._prepared and self.index >= self.lesson.step_count - 1:
            self.pause()

    def _show(self) -> None:
        step = self.lesson.step(self.index)
        self.canvas.set_scene(step.scene, self._style())
        n = self.lesson.step_count
        self._set_caption(f"Step {self.index + 1} of {n}: {step.caption}")
        self._update_buttons()
        self.stepChanged.emit(self.index, n)

    # -- clicks and drags --------------------------------------------------------------------------
    def _pressed(self, panel: int, x: float, y: float) -> None:
        if not self._prepared:
            return
        answer = self.lesson.press(self.index, panel, x, y)
        if answer == "background":  # the click needs a network pass: the lesson's background job
            self._show()
            if self._click_job is not None:
                self.bridge.cancel(self._click_job)
            self._set_status("computing…")
            self._click_job = self.bridge.submit(Job(f"lesson {self.entry.key}: click", self.lesson.background))
        elif answer:
            self._show()

    def _dragged(self, panel: int, x: float, y: float) -> None:
        if self._prepared and self.lesson.drag(self.index, panel, x, y):
            self._show()

    def _released(self) -> None:
        if self._prepared:
            self.lesson.release()

    # -- presentation ------------------------------------------------------------------------------
    def set_presentation(self, on: bool) -> None:
        """Full screen, large fonts, thick lines, keyboard only (Esc leaves)."""
        if on == self.presenting:
            return
        self.presenting = on
        self.bar.setVisible(not on)
        self.status.setVisible(not on)
        if on:
            self._normal_geometry = self.saveGeometry()
            screen = self.screen() or QApplication.primaryScreen()
            if screen is not None:  # without a window manager (a bare X server) full screen is a geometry
                self.setGeometry(screen.geometry())
            self.showFullScreen()
            self.splitter.setSizes([int(self.width() * 0.27), int(self.width() * 0.73)])
            self.canvas.setFocus()
        else:
            self.showNormal()
            if getattr(self, "_normal_geometry", None) is not None:
                self.restoreGeometry(self._normal_geometry)
        self._apply_fonts()
        if self._prepared:
            self._show()

    def _style(self) -> PaintStyle:
        return PRESENTATION if self.presenting else NORMAL

    def _apply_fonts(self) -> None:
        body = QFont()
        body.setPixelSize(30 if self.presenting else 14)
        self.text.document().setDefaultFont(body)
        self.text.setFont(body)
        cap = QFont()
        cap.setPixelSize(34 if self.presenting else 15)
        cap.setBold(self.presenting)
        self.caption.setFont(cap)

    # -- export ------------------------------------------------------------------------------------
    def export_png(self, path: str | Path, size: QSize = QSize(1920, 1080)) -> Path:
        image = QImage(size, QImage.Format.Format_RGB32)
        image.fill(QColor(PRESENTATION.background))
        p = QPainter(image)
        paint_scene(p, self.canvas.scene, QRectF(0, 0, size.width(), size.height()), self._style())
        p.end()
        if not image.save(str(path), "PNG"):
            raise OSError(f"could not write {path}")
        return Path(path)

    def export_svg(self, path: str | Path, size: QSize = QSize(1920, 1080)) -> Path:
        from PySide6.QtSvg import QSvgGenerator

        gen = QSvgGenerator()
        gen.setFileName(str(path))
        gen.setSize(size)
        gen.setViewBox(QRectF(0, 0, size.width(), size.height()))
        gen.setTitle(self.entry.title if self.entry else "lesson")
        gen.setDescription(self.caption.text())
        p = QPainter(gen)
        paint_scene(p, self.canvas.scene, QRectF(0, 0, size.width(), size.height()), self._style())
        p.end()
        if not Path(path).is_file():
            raise OSError(f"could not write {path}")
        return Path(path)

    def _export_dialog(self, kind: str) -> None:
        name = f"{self.entry.key if self.entry else 'lesson'}-step{self.index + 1}.{kind}"
        path, _ = QFileDialog.getSaveFileName(self, f"Export the view as {kind.upper()}", name,
                                              f"{kind.upper()} (*.{kind})")
        if not path:
            return
        try:
            (self.export_png if kind == "png" else self.export_svg)(path)
            self._set_status(f"Saved {path}")
        except OSError as exc:
            self._set_status(str(exc), error=True)

    # -- bits --------------------------------------------------------------------------------------
    def _set_caption(self, text: str) -> None:
        self.caption.setText(text)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet("color: #d93025;" if error else "")
        self.status.setText(text)
        if error:
            self.last_error = text

    def _update_buttons(self) -> None:
        ok = self._prepared and self.lesson is not None
        n = self.lesson.step_count if ok else 0
        self.back_button.setEnabled(ok and self.index > 0)
        self.step_button.setEnabled(ok and self.index < n - 1)
        for b in (self.run_button, self.reset_button, self.png_button, self.svg_button):
            b.setEnabled(ok)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        # the window may open again from the menu: cancel the work, keep the bridge (the
        # workbench shuts it down when it closes)
        self.pause()
        for job in (self._job_id, self._click_job):
            if job is not None:
                self.bridge.cancel(job)
        if self.presenting:
            self.set_presentation(False)
        super().closeEvent(event)
