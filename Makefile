# One-command set-up: both targets create .venv when missing and install the project into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# the libraries Qt's xcb plugin needs are checked first (the exact apt-get line when one is
# missing); `make test` needs none of them: the tests run on Qt's offscreen platform
run: $(STAMP)
	$(PY) packaging/check_qt_libs.py
	$(VENV)/bin/visionbench gui

test: $(STAMP)
	$(VENV)/bin/ruff check .
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q tests

# every benchmarks/NAME.py prints its figures as JSON; listed explicitly (fast ones first), and
# tests/test_packaging.py fails when a runnable benchmark is missing here. A listed module not yet
# written is skipped with a note; one failure does not stop the others but fails the target.
# detectors_rcnn runs alone only until benchmarks/detectors.py (which merges its figures) exists.
bench: $(STAMP)
	@status=0; \
	for b in store coco_io voc_yolo_io robustness canvas workbench jobs_bridge nms_eval backbone_lite0 platform unet detectors_rcnn detectors detector_views assist defaults distributed style siamese pix2pix; do \
	  if [ ! -f benchmarks/$$b.py ]; then echo "bench: benchmarks/$$b.py not present, skipped" >&2; continue; fi; \
	  if [ $$b = detectors_rcnn ] && [ -f benchmarks/detectors.py ]; then continue; fi; \
	  echo "bench: $$b" >&2; \
	  $(PY) -m benchmarks.$$b || { echo "bench: $$b FAILED" >&2; status=1; }; \
	done; exit $$status

clean:
	rm -rf $(VENV) build *.egg-info
