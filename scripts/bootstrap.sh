#!/usr/bin/env bash
# Installs what hallkit needs on a Debian machine: system packages (only those missing),
# a virtual environment in .venv, and hallkit itself (with its test tools for the tests).
# Sourced by scripts/run-hall.sh (HALLKIT_FOR=run) and scripts/test.sh (HALLKIT_FOR=test);
# safe to run again.
set -euo pipefail

HALLKIT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HALLKIT_VENV:-$HALLKIT_ROOT/.venv}"
HALLKIT_FOR="${HALLKIT_FOR:-test}"

say() { printf '[hallkit] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root to run: $*"; return 1; fi
}

# what-to-look-for:package pairs; a package is installed only when its command (or, for an
# absolute path, its file; a glob matches any architecture's folder) is missing.
APT_NEEDS=(   # the hall itself: screens, fonts, voice (its broker is embedded: pure Python)
  "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc:fonts-wqy-microhei"   # Chinese on screens and ticket images
  "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf:fonts-dejavu-core"   # ticket numbers (I vs 1, O vs 0)
  "espeak-ng:espeak-ng"                     # the hall display's offline Mandarin voice
  "aplay:alsa-utils"                        # plays the voice where there is no PulseAudio (paplay)
  "Xvfb:xvfb"                               # kiosk and display tests, or a kiosk without a desktop
  "xauth:xauth"
  "/usr/lib/*/libGL.so.1:libgl1"                         # Kivy draws with OpenGL ...
  "/usr/lib/*/libEGL.so.1:libegl1"                       # ... through EGL when offscreen
  "/usr/lib/*/dri/swrast_dri.so:libgl1-mesa-dri"         # software GL on machines without a GPU
  "/usr/lib/*/libmtdev.so.1:libmtdev1"                   # Kivy's touch input (else a startup traceback)
)
if [ "$HALLKIT_FOR" = test ]; then
  APT_NEEDS+=(   # what the tests talk to: real brokers, a real database, a real browser
    "mosquitto:mosquitto"                   # the hall broker; tests start their own instances
    "mosquitto_pub:mosquitto-clients"
    "/usr/bin/chromium:chromium"            # dashboard browser tests (Playwright drives it; no browser download)
    "/usr/bin/chromedriver:chromium-driver"
    "pg_lsclusters:postgresql"              # the county ingest's database; tests make their own databases
    "systemd-analyze:systemd"               # checks the units of `hall install systemd`
  )
fi
missing=()
for pair in "${APT_NEEDS[@]}"; do
  what="${pair%%:*}"; pkg="${pair#*:}"
  case "$what" in
    /*) compgen -G "$what" >/dev/null || missing+=("$pkg") ;;   # a path may hold a glob (/usr/lib/*/…)
    *) command -v "$what" >/dev/null 2>&1 || [ -x "/usr/sbin/$what" ] || missing+=("$pkg") ;;
  esac
done
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then missing+=(python3-venv python3-pip); fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing system packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# PostgreSQL for the county tests: start a stopped cluster, and give the tests a login that may
# create databases (a fresh Debian cluster trusts no TCP login). HALLKIT_TEST_PG overrides it.
if [ "$HALLKIT_FOR" = test ] && command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters -h 2>/dev/null | while read -r version cluster _port status _rest; do
    case "$status" in online*) ;; *)
      say "starting PostgreSQL $version/$cluster"
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start || say "could not start PostgreSQL" ;;
    esac
  done
  if [ -z "${HALLKIT_TEST_PG:-}" ] && command -v psql >/dev/null 2>&1 \
     && ! PGPASSWORD=hallkit psql -h 127.0.0.1 -U hallkit -d postgres -qtAc 'SELECT 1' >/dev/null 2>&1; then
    say "creating the PostgreSQL login hallkit for the tests"
    as_root su postgres -c "psql -qc \"CREATE ROLE hallkit LOGIN CREATEDB PASSWORD 'hallkit'\"" >/dev/null \
      || say "could not create the PostgreSQL login hallkit"
  fi
fi

python3 - <<'PY' || { say "hallkit needs Python 3.11 or newer"; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

stamp="$VENV/.hallkit-installed-$HALLKIT_FOR"
extras=""; [ "$HALLKIT_FOR" = test ] && extras="[test]"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment in $VENV"
  python3 -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ "$HALLKIT_ROOT/pyproject.toml" -nt "$stamp" ]; then
  say "installing hallkit and its dependencies (pip)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e "$HALLKIT_ROOT$extras"
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
