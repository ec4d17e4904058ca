"""The Review dock: go through a model's proposals at speed.

Shows how many proposals are open (on this image, and how many images have some), steps to the
next or previous image with proposals, accepts or rejects the selected one (Enter / Del on the
canvas), accepts every proposal of the image scoring at least the slider's value, and counts what
this session did with them (accepted unchanged, edited then accepted, rejected).
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSlider,
                               QVBoxLayout, QWidget)


class ReviewPanel(QWidget):
    acceptRequested = Signal()
    rejectRequested = Signal()
    acceptAboveRequested = Signal(float)
    stepRequested = Signal(int)          # +1 next / -1 previous image with proposals
    prelabelRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        # plain text whose width never sizes the dock: an Accept changes these counts, and rich or
        # wrapped text relaid out the panel (and a wider one shrank the canvas) at every keystroke
        self.open_label = self._count_label()
        self.prev_button = QPushButton("◀ Previous (Shift+N)", self)
        self.next_button = QPushButton("Next (N) ▶", self)
        self.accept_button = QPushButton("Accept (Enter)", self)
        self.reject_button = QPushButton("Reject (Del)", self)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, 100)
        self.slider.setValue(50)
        self.slider.setToolTip("Score from which 'Accept all' takes a proposal")
        self.slider_label = QLabel(self)
        self.slider_label.setMinimumWidth(40)
        self.accept_above_button = QPushButton(self)
        self.counts_label = self._count_label()
        self.prelabel_button = QPushButton("Pre-label images…", self)
        self.prev_button.clicked.connect(lambda: self.stepRequested.emit(-1))
        self.next_button.clicked.connect(lambda: self.stepRequested.emit(+1))
        self.accept_button.clicked.connect(self.acceptRequested)
        self.reject_button.clicked.connect(self.rejectRequested)
        self.accept_above_button.clicked.connect(lambda: self.acceptAboveRequested.emit(self.score()))
        self.prelabel_button.clicked.connect(self.prelabelRequested)
        self.slider.valueChanged.connect(lambda *_: self.set_above_count(self._above_count))

        steps = QHBoxLayout()
        steps.addWidget(self.prev_button)
        steps.addWidget(self.next_button)
        decide = QHBoxLayout()
        decide.addWidget(self.accept_button)
        decide.addWidget(self.reject_button)
        above = QGridLayout()
        above.addWidget(QLabel("Score ≥", self), 0, 0)
        above.addWidget(self.slider, 0, 1)
        above.addWidget(self.slider_label, 0, 2)
        above.addWidget(self.accept_above_button, 1, 0, 1, 3)
        above_box = QGroupBox("Accept many", self)
        above_box.setLayout(above)
        session = QGroupBox("This session", self)
        session_layout = QVBoxLayout(session)
        session_layout.addWidget(self.counts_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.open_label)
        layout.addLayout(steps)
        layout.addLayout(decide)
        layout.addWidget(above_box)
        layout.addWidget(session)
        layout.addWidget(self.prelabel_button)
        self.extra = QVBoxLayout()  # the label loop's box goes here when it is used
        layout.addLayout(self.extra)
        layout.addStretch(1)
        self._above_count = 0
        self.set_open(0, 0)
        self.set_counts({"accepted": 0, "edited": 0, "rejected": 0})

    def _count_label(self) -> QLabel:
        label = QLabel(self)
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        return label

    def score(self) -> float:
        return self.slider.value() / 100.0

    def set_score(self, value: float) -> None:
        self.slider.setValue(round(value * 100))

    def set_open(self, on_image: int, images: int) -> None:
        self.open_label.setText(f"{on_image} open proposal{'s' * (on_image != 1)} on this image\n"
                                f"{images} image{'s' * (images != 1)} with proposals")
        self.accept_button.setEnabled(on_image > 0)
        self.reject_button.setEnabled(on_image > 0)

    def set_above_count(self, n: int) -> None:
        self._above_count = n
        self.slider_label.setText(f"{self.score():.2f}")
        self.accept_above_button.setText(f"Accept all ≥ {self.score():.2f} on this image")
        self.accept_above_button.setEnabled(n > 0)

    def set_counts(self, counts: dict) -> None:
        self.counts_label.setText(f"accepted unchanged {counts['accepted']}\nedited then accepted "
                                  f"{counts['edited']}\nrejected {counts['rejected']}")
