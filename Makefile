# tinyrobust: `make demo` and `make test` do all set-up on a fresh Debian machine:
# the apt packages below (sudo only when not root), a .venv, and the package in it.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# chromium-headless-shell (the smaller of Debian's two Chromium builds) renders report.html in its test.
APT_PACKAGES := gcc make python3 python3-venv python3-dev gcc-arm-none-eabi libnewlib-arm-none-eabi \
	qemu-system-arm clang libclang-rt-14-dev openocd chromium-headless-shell cmake
PYTEST_ARGS ?=
# The pinned TensorFlow (tensorflow-cpu 2.21) has wheels for CPython 3.10-3.13 only: python3 when it is
# one of those, else the newest python3.13 ... python3.10 on PATH. `make PYTHON=/path/to/python3.1x` overrides.
SUPPORTED_PYTHONS := 3.13 3.12 3.11 3.10
PYTHON ?= $(shell for p in python3 $(addprefix python,$(SUPPORTED_PYTHONS)); do \
	v=$$($$p -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) && \
	case " $(SUPPORTED_PYTHONS) " in (*" $$v "*) echo $$p; break;; esac; done)

.PHONY: setup apt venv demo test lint fuzz bench clean

setup: apt venv

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || test -n "$(PYTHON)" || { echo "no Python 3.10-3.13 found (python3 is" \
		"$$(python3 --version 2>&1 | cut -d' ' -f2)): TensorFlow 2.21 has wheels for 3.10-3.13 only; install one" \
		"(Debian 12/13 and Ubuntu 22.04/24.04 ship one as python3) or run make PYTHON=/path/to/python3.12" >&2; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: setup
	$(VENV)/bin/tinyrobust demo

test: setup
	$(VENV)/bin/ruff check toolchain tests
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check toolchain tests

# FUZZ_SECONDS=N make fuzz runs longer; the corpus accumulates outside the checkout (FUZZ_CORPUS).
FUZZ_SECONDS ?= 20
FUZZ_CORPUS ?= $(HOME)/.cache/tinyrobust/fuzz/tr_proto
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_CORPUS=$(FUZZ_CORPUS) $(VENV)/bin/pytest -m fuzz -k fuzz \
		tests/firmware/test_app_protocol.py

bench: setup
	$(VENV)/bin/tinyrobust bench

clean:
	rm -rf build out .pytest_cache
