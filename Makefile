# The two commands: `make demo` and `make test`. Each creates .venv if it is missing, installs torch
# (the CPU build that lies on these machines' disk) first, then the project, then runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION := 2.13.0
PYTEST_ARGS ?=

.PHONY: demo test bench clean chromium

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: | $(PY)
	$(PY) -m pip install --quiet torch==$(TORCH_VERSION)
	touch $@

$(VENV)/.demo: pyproject.toml $(VENV)/.torch
	$(PY) -m pip install --quiet -e '.[game]'
	touch $@

# inkcpp-py (a test extra) builds with CMake, which must find the venv's Python, not a pyenv shim
$(VENV)/.test: pyproject.toml examples/conjure-caves/pyproject.toml $(VENV)/.torch
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH Python_ROOT_DIR=$(abspath $(VENV)) \
	  $(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e examples/conjure-caves
	touch $@

demo: $(VENV)/.demo
	$(VENV)/bin/conjure demo -o out
	$(VENV)/bin/conjure generate level -g level-lm -s 1 -p prompt="many pipes, few enemies" -o out/learned-level.msgpack
	$(VENV)/bin/conjure generate level -g level-lm -s 1 -p prompt="many pipes, few enemies" -o out/learned-level.png
	SDL_VIDEODRIVER=dummy $(PY) -m game_demo --headless --floors 3 --seed 1 --screenshot out/game.png

# the playground's browser test drives Debian's chromium (playwright, no browser download); as root (CI) it is
# installed here, elsewhere that test is skipped with the reason
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; } || \
	  echo "chromium could not be installed: the playground browser test will be skipped"

# inkjs (compiler + runtime) for the Ink tests: node packages pinned by tests/js/package-lock.json
tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
	touch $@

test: $(VENV)/.test chromium tests/js/node_modules/.installed
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

bench: $(VENV)/.demo
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis *.egg-info
