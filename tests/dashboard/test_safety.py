"""Safe by default: a dashboard that cannot start changes no one's status, HTTPS with --cert/--key
and Secure cookies then, the security headers on every page."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from hallkit.contracts.hall import DeviceState, DeviceStatus, Topics
from hallkit.contracts.mqtt import make_client
from hallkit.dashboard.server import DashboardServer
from hallkit.dashboard.web import SECURITY_HEADERS

from hallkit.testing import DASHBOARD_HALL, free_port, listening_addresses

ROOT = Path(__file__).parents[2]


def test_a_second_dashboard_on_a_taken_port_says_so_and_changes_no_status(hall, mosquitto, tmp_path):
    topic = Topics("test-hall").device_status("dashboard")
    seen: list[DeviceStatus] = []
    retained = threading.Event()
    watcher = make_client(mosquitto.address, "watcher")
    watcher.on_message = lambda _c, _u, m: (seen.append(DeviceStatus.model_validate_json(m.payload)), retained.set())
    watcher.connect(mosquitto.address.host, mosquitto.address.port)
    watcher.loop_start()
    watcher.subscribe(topic, qos=1)
    try:
        assert retained.wait(10) and seen[-1].state is DeviceState.ONLINE
        config = tmp_path / "hall.toml"
        config.write_text(DASHBOARD_HALL, "utf-8")
        second = subprocess.run(
            [sys.executable, "-m", "hallkit.cli", "dashboard", "--config", str(config), "--broker", mosquitto.url,
             "--data", str(tmp_path / "data"), "--host", "127.0.0.1", "--port", str(hall.dashboard.port)],
            check=False, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert second.returncode != 0 and "Traceback" not in second.stderr
        assert f"127.0.0.1:{hall.dashboard.port}" in second.stderr and "--port" in second.stderr
        assert second.stderr.count("Cannot listen") == 1 and second.stderr.count("无法在") == 1
        # The running dashboard was never displaced nor reported offline, and still answers.
        assert [s.state for s in seen] == [DeviceState.ONLINE]
        assert hall.dashboard.live.client.is_connected()
        assert httpx.get(hall.url + "health").status_code == 200
    finally:
        watcher.loop_stop()
        watcher.disconnect()


def test_https_with_a_certificate_secure_cookies_and_the_headers_on_every_page(hall_config, mosquitto, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    dashboard = DashboardServer(hall_config, mosquitto.address, tmp_path / "data", port=free_port(), tls=(cert, key))
    assert dashboard.host == "127.0.0.1"  # the default: this computer only
    dashboard.start()
    try:
        assert dashboard.url.startswith("https://127.0.0.1:")
        with httpx.Client(base_url=dashboard.url, verify=str(cert)) as client:
            login = client.get("login")
            assert login.status_code == 200
            assert all("Secure" in c for c in login.headers.get_list("set-cookie"))
            for path in ("login", "health", "", "api/live", "no-such-page", "static/dashboard.css"):
                response = client.get(path)
                for name, value in SECURITY_HEADERS.items():
                    assert response.headers.get(name) == value, (path, name)
    finally:
        dashboard.stop()


@pytest.mark.parametrize("command", ["dashboard", "web"])
def test_the_dashboard_and_the_phone_page_listen_on_this_computer_only_by_default_and_say_so(
        command, mosquitto, tmp_path):
    config = tmp_path / "hall.toml"
    config.write_text(DASHBOARD_HALL, "utf-8")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "hallkit.cli", command, "--config", str(config), "--broker", mosquitto.url,
         "--data", str(tmp_path / "data"), "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not listening_addresses(port) and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listening_addresses(port) == {"127.0.0.1"}
    finally:
        server.terminate()
        out, err = server.communicate(timeout=60)
    assert f"Listening on http://127.0.0.1:{port}" in out and out.count("仅本机可访问") == 1, out + err
