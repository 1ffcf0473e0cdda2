# Two entry points: `make test` and `make demo`. Both build .venv on a fresh machine first.
# torch/torchvision 2.14.1/0.29.1 are taken from this machine's disk by pip (see /etc/xdg/pip);
# facenet-pytorch pins torch<2.3, so it goes in with --no-deps (its MTCNN runs fine on 2.14).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   ?= demo

.PHONY: test demo venv clean sheet bench-foundation bench bench-generators

venv: $(STAMP)

# -qq keeps pip to errors (this machine's pip.conf names index folders that may be absent: one warning line
# each); PYTHONWARNINGS keeps setuptools' deprecation banners for editable installs out of the log.
PIP := PYTHONWARNINGS=ignore $(PY) -m pip install -qq

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "setting up $(VENV) (pinned packages from requirements.txt; a few minutes the first time)"
	@$(PIP) --upgrade pip
	@$(PIP) -r requirements.txt
	@$(PIP) --no-deps facenet-pytorch==2.6.0
	@$(PIP) --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# lint-imports checks the layers and the no-cycle rule in pyproject.toml ([tool.importlinter]).
test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) -m forensics.cli.main demo --out $(DEMO)

sheet: $(STAMP)
	$(PY) -m forensics.cli.main synth --sheet docs/identity_sheet.png

# Foundation benchmarks: synthetic realism (MTCNN vs ground truth), render and preprocessing speed.
bench-foundation: $(STAMP)
	$(PY) -m benchmarks.synthetic
	$(PY) -m benchmarks.preprocess

# Every shipped suite, right after `make demo`: a suite takes the demo's world, generators and champion where its
# own paths (data/synth, runs/...) are absent, and says which in its first lines. A suite with a failed cell
# does not stop the others; the exit status is the worst one.
BENCH_OUT ?= benchmarks/results
SUITES    ?= cross-generator robustness speed   # protocol needs real datasets: forensics bench run protocol --data-root DIR
bench: $(STAMP)
	@status=0; for suite in $(SUITES); do \
	  $(PY) -m forensics.cli.main bench run $$suite --demo $(DEMO) --out $(BENCH_OUT) || status=$$?; \
	  [ $$status -ge 2 ] && exit $$status; \
	done; \
	echo "results: $(BENCH_OUT)/<suite>.md (tables), <suite>.json (everything), <suite>-*.png (figures);"; \
	echo "         MLflow experiment 'benchmarks': .venv/bin/forensics ui, then http://127.0.0.1:5000"; \
	exit $$status

# Generator quality and training speed (needs runs/faceswap, runs/animation and the probes).
bench-generators: $(STAMP)
	$(PY) -m benchmarks.generators

clean:
	rm -rf $(VENV) .pytest_cache
