#!/usr/bin/env bash
# Installs what the hall needs, then runs the whole hall on this machine (hall demo).
# Extra arguments go to `hall demo`, e.g. scripts/run-hall.sh --headless
set -euo pipefail
HALLKIT_FOR=run source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$HALLKIT_ROOT"
exec hall demo "$@"
