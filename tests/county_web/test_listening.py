"""``hall county web`` through the command line: this computer only unless told otherwise, and says
so; HTTPS with --cert/--key."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from hallkit.testing import free_port, listening_addresses

ROOT = Path(__file__).parents[2]


def start_console(county_db: str, data: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "hallkit.cli", "county", "web", "--db", county_db,
                             "--data", str(data), "--port", str(port), *extra],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_listening(console: subprocess.Popen[str], port: int) -> set[str]:
    deadline = time.monotonic() + 60
    while not (addresses := listening_addresses(port)):
        if console.poll() is not None or time.monotonic() > deadline:
            console.kill()
            out, err = console.communicate()
            raise AssertionError(f"the console did not listen on {port}:\n{out}\n{err}")
        time.sleep(0.1)
    return addresses


def stopped(console: subprocess.Popen[str]) -> tuple[str, str]:
    console.terminate()
    out, err = console.communicate(timeout=60)
    assert "Traceback" not in err, err
    return out, err


def test_the_console_listens_on_this_computer_only_by_default_and_says_so(county_db, tmp_path):
    port = free_port()
    console = start_console(county_db, tmp_path / "console", port)
    try:
        assert wait_listening(console, port) == {"127.0.0.1"}
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
    finally:
        out, _err = stopped(console)
    assert f"Listening on http://127.0.0.1:{port}/ (this computer only" in out, out
    assert out.count("仅本机可访问") == 1 and out.count("this computer only; --host 0.0.0.0 opens it") == 1, out


def test_the_console_on_the_network_when_told_and_over_https_with_a_certificate(county_db, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    port = free_port()
    console = start_console(county_db, tmp_path / "console", port, "--host", "0.0.0.0",
                            "--cert", str(cert), "--key", str(key))
    try:
        assert wait_listening(console, port) == {"0.0.0.0"}
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=str(cert), timeout=10) as client:
            login = client.get("/login")
            assert login.status_code == 200
            assert login.headers.get_list("set-cookie") and all("Secure" in c for c in login.headers.get_list("set-cookie"))
    finally:
        out, _err = stopped(console)
    assert f"https://127.0.0.1:{port}/" in out and out.count("向网络开放") == 1 and "open to the network" in out, out
