# Two entry points: `make test` and `make demo`. Both build .venv on a fresh machine first.
# torch/torchvision 2.14.1/0.29.1 are taken from this machine's disk by pip (see /etc/xdg/pip);
# facenet-pytorch pins torch<2.3, so it goes in with --no-deps (its MTCNN runs fine on 2.14).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   ?= demo

.PHONY: test demo venv clean sheet bench-foundation bench

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps facenet-pytorch==2.6.0
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

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

# Issue-4/5 benchmarks (need the cpu-small generators: forensics train generator faceswap|animation).
bench: $(STAMP)
	$(PY) -m benchmarks.generators
	$(PY) -m forensics.cli.main bench run cross-generator
	$(PY) -m forensics.cli.main bench run robustness

clean:
	rm -rf $(VENV) .pytest_cache
