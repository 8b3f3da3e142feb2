"""README "Setting up a real hall", run to the letter: a hall and a county over TLS, per-device logins.

Every ``sh`` block of the section runs in order, each line as written, with the real Mosquitto
(started as this test's user: as root it drops to user mosquitto, as the Debian service does)
and the real PostgreSQL. The ``toml`` block goes into hall.toml where the README says so. What a
test cannot share with the machine is replaced in the text: ``/etc/hallkit``, ``/var/lib/hallkit``
and ``/etc/systemd/system`` by a folder of the test's own, the ports by free ones, the county's
host name by ``localhost``, the database by a fresh one. ``console`` blocks (packages, systemd)
are not run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from hallkit.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("mosquitto -c", "hall hub", "hall dashboard", "hall web", "hall county ingest")
"""Lines that start a process that runs until stopped."""


def readme_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text("utf-8")
    section = text.split("## Setting up a real hall", 1)[1].split("\n## ", maxsplit=1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)


@pytest.fixture
def place():
    # Mosquitto, once user mosquitto, must pass through every folder above its files.
    folder = Path(tempfile.mkdtemp(prefix="hallkit-setup-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def wait_until(check, what: str, seconds: float = 60.0, explain=lambda: ""):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"not within {seconds} s: {what}\n{explain()}")


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_readme_setup_brings_up_a_hall_and_a_county_over_tls(place, county_db):
    ports = {"1883": free_port(), "8883": free_port(), "8080": free_port(), "8090": free_port()}
    replacements = [("/etc/hallkit", f"{place}/etc/hallkit"), ("/var/lib/hallkit", f"{place}/var/lib/hallkit"),
                    ("/etc/systemd/system", f"{place}/systemd"), ("county.example.gov.cn", "localhost"),
                    ("postgresql://ingest@localhost/hallkit_county", county_db),
                    *((f":{port}", f":{new}") for port, new in ports.items()),
                    *((f"--port {port}", f"--port {new}") for port, new in ports.items())]

    def adapt(line: str) -> str:
        for old, new in replacements:
            line = line.replace(old, new)
        return line

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in ("HALLKIT_BROKER", "HALLKIT_BROKER_PASSWORD_FILE", "HALLKIT_BROKER_PASSWORD", "HALLKIT_HALL"):
        env.pop(name, None)
    services: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    outputs: dict[str, subprocess.CompletedProcess[str]] = {}

    def run(line: str) -> None:
        if line.startswith(SERVICES):
            log = place / f"service-{len(services)}.log"
            with open(log, "wb") as out:
                process = subprocess.Popen(shlex.split(line), stdout=out, stderr=subprocess.STDOUT, env=env,
                                           cwd=place)
            services.append((line, process, log))
            ready(line, process, log)
            return
        done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env, cwd=place,
                              timeout=120, check=False)
        outputs[line] = done
        if not line.startswith("hall doctor"):  # the doctor fails on the devices this test does not run
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"

    def ready(line: str, process: subprocess.Popen[bytes], log: Path) -> None:
        port = next((int(p) for p in re.findall(r"(?::|--port )(\d+)", line) if int(p) in ports.values()), None)
        if line.startswith("mosquitto"):
            port = int(re.search(r"^listener (\d+)", Path(line.rsplit(maxsplit=1)[-1]).read_text(), re.M).group(1))
        if line.startswith(("mosquitto", "hall dashboard", "hall web")) and port is not None:
            wait_until(lambda: listening(port) or process.poll() is not None, f"{line} listening")
        assert process.poll() is None, f"{line} exited:\n{log.read_text()}"

    try:
        for kind, block in readme_blocks():
            if kind == "toml":
                config = place / "etc/hallkit/hall.toml"
                config.write_text(config.read_text("utf-8") + "\n" + adapt(block), "utf-8")
            elif kind == "sh":
                for line in block.strip().splitlines():
                    if line.strip():
                        run(adapt(line.strip()))

        secrets = place / "etc/hallkit/broker/secrets"
        doctor_line = next(line for line in outputs if line.startswith("hall doctor"))

        last: list[str] = []

        def doctor_says_all_is_up() -> str | None:
            done = subprocess.run(["bash", "-c", doctor_line], capture_output=True, text=True, env=env, cwd=place,
                                  check=False)
            last[:] = [done.stdout + done.stderr]
            wanted = ("✓ broker", "✓ hub", "✓ login hub", "✓ login pad-1", "✓ uplink", " clock: ")
            return done.stdout if all(w in done.stdout for w in wanted) else None

        report = wait_until(doctor_says_all_is_up, "hall doctor: broker, hub, logins, uplink ok", 90,
                            lambda: last[0] if last else "")
        # The devices this test does not run are named, each with what to do.
        assert "✗ device kiosk-1" in report and "→" in report

        report_line = next(line for line in outputs if line.startswith("hall county report"))

        def county_knows_the_hall() -> bool:
            done = subprocess.run(["bash", "-c", report_line + " --json"], capture_output=True, text=True,
                                  env=env, cwd=place, check=False)
            return done.returncode == 0 and "xinghua-town" in done.stdout

        wait_until(county_knows_the_hall, "the county's report has the hall (its link status came over TLS)", 90)
        status = outputs[next(line for line in outputs if line.startswith("hall status"))]
        assert "xinghua-town" in status.stdout

        # A wrong password is named as such, with the login.
        (place / "wrong").write_text("not-the-password\n")
        (place / "wrong").chmod(0o600)
        wrong = subprocess.run(["hall", "status", "--broker", f"mqtt://console@127.0.0.1:{ports['1883']}",
                                "--password-file", str(place / "wrong")], capture_output=True, text=True, env=env,
                               check=False)
        # Mosquitto answers a wrong password "not authorised" (CONNACK 5), as it does a login it does not know.
        assert wrong.returncode != 0 and wrong.stderr.count("refused login console: not authorised") == 1, wrong.stderr
        assert (secrets / "hub").stat().st_mode & 0o077 == 0
    finally:
        for _line, process, _log in reversed(services):
            process.terminate()
        for _line, process, _log in services:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    for line, _process, log in services:
        if line.startswith("mosquitto"):
            # The test's own "is the port open yet" probe connects and closes without a TLS
            # handshake; on a TLS listener Mosquitto logs that as an error of an unknown client.
            probe = ("unexpected eof while reading", "Client <unknown> disconnected")
            text = "\n".join(entry for entry in log.read_text().splitlines()
                             if not any(mark in entry for mark in probe))
            assert "Warning" not in text and "Error" not in text, f"{line}:\n{text}"
