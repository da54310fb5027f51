# The two commands: `make demo` runs llmlens with demo data; `make test` runs the whole test suite.
.PHONY: demo test lint bench venv dist screenshots

PY ?= python3

venv:
	@test -x .venv/bin/python || $(PY) -m venv .venv
	@.venv/bin/python -m pip install -q --upgrade pip
	@.venv/bin/python -m pip install -q -e '.[server]'

demo: venv
	.venv/bin/llmlens serve --demo --data .llmlens-demo

test:
	./scripts/setup-test-env.sh
	.venv/bin/ruff check src tests benchmarks examples
	.venv/bin/ruff format --check src tests benchmarks examples
	.venv/bin/mypy
	# A module runs whole in one worker: its servers (module fixtures) start once.
	.venv/bin/pytest -q -n 4 --dist loadfile

lint:
	.venv/bin/ruff check src tests benchmarks examples
	.venv/bin/ruff format --check src tests benchmarks examples
	.venv/bin/mypy

bench:
	./scripts/setup-test-env.sh
	.venv/bin/python -m benchmarks

# Retake the README's screenshots (docs/screenshots/*.png) from a demo server; the tests never write there.
screenshots:
	./scripts/setup-test-env.sh
	.venv/bin/python scripts/screenshots.py

# A wheel in dist/ for installing without a clone: pip install 'dist/llmlens-<version>-py3-none-any.whl[server]'.
dist: venv
	rm -rf dist
	.venv/bin/python -m pip wheel -q --no-deps --wheel-dir dist .
