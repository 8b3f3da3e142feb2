"""A simulated pad at a window, with a scripted staff member and residents.

The staff member calls the next resident, serves, completes; the resident then
does what the script says: ``5`` (rates 非常满意), ``1:态度不好+效率低`` (rates
非常不满意 with those reasons) or ``walk`` (walks away without rating). The
script repeats. Everything goes through the simulated hardware and a real pad
bridge, so the hub sees exactly what a real pad of that kind would send.
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
from collections.abc import Callable
from itertools import cycle
from pathlib import Path
from typing import Literal

from hallkit.broker.pad_bridge import PadBridge
from hallkit.contracts.mqtt import BrokerAddress
from hallkit.devices.evaluator.keypad import KeypadPad
from hallkit.devices.evaluator.pad import RatingPad, StaffKey, prompt_line
from hallkit.devices.evaluator.serial_pad import SerialPad
from hallkit.devices.evaluator.simulator import KeypadSimulator, SerialPadSimulator, SimulatedHardware, TouchHardware
from hallkit.devices.evaluator.touch import TouchPad
from pydantic import BaseModel

from hallkit.rating.models import Level

PadKind = Literal["serial", "keypad", "network"]
_Finder = Callable[[list[str]], str | None]
"""Looks at the pad's display and returns what it waited for, or None."""

TICKET_NUMBER = re.compile(r"(?<![A-Za-z0-9])[A-Z]\d{3,}(?!\d)")
SERVING_LINE = 1
"""The pad screen's second line shows the ticket being served."""


class Behaviour(BaseModel):
    """What one resident does when asked to rate: a level (with reasons), or walk away."""

    level: Level | None = None
    tags: list[str] = []

    @property
    def walks_away(self) -> bool:
        return self.level is None


def parse_script(script: str) -> list[Behaviour]:
    """``5,4,1:态度不好+效率低,walk`` → one behaviour per resident, repeated in that order."""
    behaviours = []
    for item in (part.strip() for part in script.split(",")):
        if not item:
            continue
        if item == "walk":
            behaviours.append(Behaviour())
            continue
        level, _, tags = item.partition(":")
        if level not in {"1", "2", "3", "4", "5"}:
            raise ValueError(f"script item {item!r}: use 5 … 1 (with :reason+reason for 2 and 1) or walk")
        behaviours.append(Behaviour(level=Level(int(level)), tags=[t for t in tags.split("+") if t]))
    if not behaviours:
        raise ValueError("the script is empty")
    return behaviours


class Served(BaseModel):
    number: str
    behaviour: Behaviour
    prompted: bool


class PadScript:
    """The staff member and the residents at one pad."""

    def __init__(self, hardware: SimulatedHardware, behaviours: list[Behaviour],
                 service_seconds: Callable[[], float] = lambda: 0.1, wait_seconds: float = 10.0) -> None:
        self.hardware = hardware
        self.behaviours = cycle(behaviours)
        self.service_seconds = service_seconds
        self.wait_seconds = wait_seconds
        self.served: list[Served] = []
        self.last_number: str | None = None

    def serve_one(self, stop: threading.Event | None = None) -> Served | None:
        """Call, serve, complete and let the resident act; None when nobody was waiting."""
        stop = stop or threading.Event()
        self.hardware.press(StaffKey.CALL)
        number = self._wait(lambda lines: _serving(lines, self.last_number), stop)
        if number is None:
            return None
        self.last_number = number
        stop.wait(self.service_seconds())
        self.hardware.press(StaffKey.DONE)
        asked = self._wait(lambda lines: number if prompt_line(number) in lines else None, stop) is not None
        behaviour = next(self.behaviours)
        if asked and behaviour.level is not None:
            self.hardware.rate(behaviour.level, behaviour.tags)
            # Wait until the hub took it (the prompt leaves the screen), so the next call starts clean.
            self._wait(lambda lines: None if prompt_line(number) in lines else number, stop)
        served = Served(number=number, behaviour=behaviour, prompted=asked)
        self.served.append(served)
        return served

    def _wait(self, found: _Finder, stop: threading.Event) -> str | None:
        deadline = time.monotonic() + self.wait_seconds
        while time.monotonic() < deadline and not stop.is_set():
            value = found(self.hardware.display())
            if value is not None:
                return value
            time.sleep(0.02)
        return None



def _serving(lines: list[str], previous: str | None) -> str | None:
    """The ticket on the serving line (the second), if it is a new one."""
    if len(lines) <= SERVING_LINE:
        return None
    match = TICKET_NUMBER.search(lines[SERVING_LINE])
    return match.group(0) if match and match.group(0) != previous else None


class SimulatedPad:
    """Simulated hardware of one kind, its driver and a real bridge to the hub, for one window."""

    def __init__(self, kind: PadKind, broker: BrokerAddress, hall_id: str, device_id: str, window: int,
                 reasons: list[str], folder: Path | None = None, address: int = 1) -> None:
        self.kind = kind
        self.hardware: SimulatedHardware
        pad: RatingPad
        if kind == "serial":
            folder = folder or Path(tempfile.mkdtemp(prefix=f"hall-pad-{device_id}-"))
            serial_sim = SerialPadSimulator(folder / f"{device_id}.tty", address)
            self.hardware, pad = serial_sim, SerialPad(str(serial_sim.link), address=str(address))
        elif kind == "keypad":
            folder = folder or Path(tempfile.mkdtemp(prefix=f"hall-pad-{device_id}-"))
            keypad_sim = KeypadSimulator(folder / f"{device_id}.events", folder / f"{device_id}.screen", reasons)
            self.hardware, pad = keypad_sim, KeypadPad(str(keypad_sim.path), display=str(keypad_sim.display_path))
        else:
            touch = TouchPad(device_id)
            self.hardware, pad = TouchHardware(touch), touch
        self.pad = pad
        self.bridge = PadBridge(pad, broker, hall_id, device_id, window)

    def start(self) -> SimulatedPad:
        if isinstance(self.hardware, SerialPadSimulator | KeypadSimulator):
            self.hardware.start()
        self.bridge.start()
        return self

    def stop(self) -> None:
        self.bridge.stop()
        if isinstance(self.hardware, SerialPadSimulator | KeypadSimulator):
            self.hardware.stop()
