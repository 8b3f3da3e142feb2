"""Support for the tests and the benches (not used by the hall itself): a real Mosquitto process.

Each broker runs on a free port with the project's own configuration (:func:`~hallkit.broker.mosquitto.mosquitto_conf`),
and can be stopped and restarted with its persistence, as a hall's or a county's broker is.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from pathlib import Path

from hallkit.broker.mosquitto import mosquitto_conf
from hallkit.contracts.mqtt import BrokerAddress

from hallkit.testing import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Mosquitto:
    """A mosquitto process with the project's own configuration (persistence on, limits raised)."""

    def __init__(self, folder: Path, port: int | None = None, conf: Path | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        folder.mkdir(parents=True, exist_ok=True)
        if conf is None:
            conf = folder / "mosquitto.conf"
            # Started as root, mosquitto drops to user "mosquitto", which cannot write the test's
            # folder and then silently persists nothing: stay the user running the tests.
            conf.write_text(mosquitto_conf(folder, self.port, "127.0.0.1", None, None)
                            + f"user {getpass.getuser()}\n")
        self.conf = conf
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress(host="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return self.address.url

    def start(self) -> Mosquitto:
        with open(self.folder / "mosquitto.log", "ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {(self.folder / 'mosquitto.log').read_text()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: mosquitto writes its persistence file
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
