#!/usr/bin/env bash
# Run every check: bring up Docker, RabbitMQ and the package (scripts/setup.sh),
# then ruff and the whole pytest suite (unit and integration, on the real
# services). Extra arguments go to pytest, e.g. scripts/test.sh -k ledger.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> pytest"
.venv/bin/pytest "$@"
