#!/usr/bin/env bash
# Quick start: `./quickstart.sh demo` runs the offline demo, `./quickstart.sh test` the tests,
# `./quickstart.sh lint` ruff (lint and format) and mypy (configured in pyproject.toml).
# Creates .venv (Python 3.11) and installs the package with its test tools on first use.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
# Re-run every time: a no-op when everything is installed, and picks up new dependencies.
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'

case "${1:-}" in
  demo) shift; exec .venv/bin/tf-finetune demo "$@" ;;
  test) shift; exec .venv/bin/python -m pytest "$@" ;;
  lint) .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy ;;
  *) echo "usage: $0 demo|test|lint [args...]" >&2; exit 2 ;;
esac
