#!/usr/bin/env bash
# Installs what the tests need, then runs the whole suite (unit, integration, property tests).
# Extra arguments go to pytest, e.g. scripts/test.sh -k queue
set -euo pipefail
HALLKIT_FOR=test source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$HALLKIT_ROOT"
exec python -m pytest -n "${HALLKIT_TEST_WORKERS:-2}" -q "$@"
