"""House rule 4, end to end: a resident's full ID number and name never leave the kiosk.

A card is read from the simulated reader on a real pty, the kiosk takes a priority
ticket with the card's keyed hash, a window calls and completes it, the resident rates
it badly (which opens a case), and the uplink forwards everything to a county broker.
Then every MQTT payload on both brokers, every log line, and every byte of the hub's
SQLite files are searched for the number and the name, in UTF-8 and in UTF-16.
"""

from __future__ import annotations

import logging
import threading

import paho.mqtt.client as mqtt
from hallkit.broker.client import HallClient
from hallkit.broker.hub import Hub
from hallkit.broker.parts import hub_parts
from hallkit.broker.testing import Mosquitto
from hallkit.contracts.mqtt import make_client
from hallkit.devices.idcard.simulator import IdCardSimulator
from hallkit.kiosk.devices import KioskDevices

from hallkit.config import parse_config
from hallkit.queue.models import CallNext, Channel, Complete, Priority, TakeTicket
from hallkit.rating.models import Level, RatingChannel, RatingSubmission
from hallkit.testing import HALL_WITH_DEVICES
from tests.broker.test_hub import wait_for


class Sniffer:
    """Every payload published on a broker, whatever its topic."""

    def __init__(self, broker: Mosquitto, name: str) -> None:
        self.payloads: list[bytes] = []
        self.lock = threading.Lock()
        self.client = make_client(broker.address, name)
        self.client.on_connect = lambda c, *_: c.subscribe("#", qos=1)
        self.client.on_message = self._keep
        self.client.connect(broker.address.host, broker.port)
        self.client.loop_start()

    def _keep(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.payloads.append(message.topic.encode() + b" " + message.payload)

    def close(self) -> None:
        self.client.loop_stop()


class _Cards:
    def __init__(self) -> None:
        self.records = []

    def printer_status(self, status) -> None: ...
    def ticket_printed(self, ticket_id) -> None: ...
    def ticket_not_printed(self, ticket_id, status) -> None: ...
    def card_problem(self, error) -> None: ...

    def card_read(self, record) -> None:
        self.records.append(record)


def forms(secret: str) -> list[bytes]:
    """The ways a text could sit in a file or a payload."""
    return [secret.encode("utf-8"), secret.encode("utf-16-le"), secret.encode("unicode_escape"),
            secret.encode("ascii", "backslashreplace")]


def test_no_full_id_number_or_name_leaves_the_kiosk(mosquitto, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    county = Mosquitto(tmp_path / "county").start()
    config = parse_config(HALL_WITH_DEVICES.replace("[[staff]]", f'[upstream]\nbroker = "{county.url}"\n\n[[staff]]', 1)
                          + '\n[[devices]]\nid = "idcard-1"\nkind = "idcard"\nurl = "serial:///dev/null"\n'
                          'kiosk = "kiosk-1"\n')
    hall_sniffer = Sniffer(mosquitto, "sniff-hall")
    county_sniffer = Sniffer(county, "sniff-county")
    hub = Hub(config, mosquitto.address, tmp_path / "data", "normal", parts=hub_parts(config))
    hub.start()
    cards = _Cards()
    with IdCardSimulator() as reader:
        card = reader.card("elderly")
        secrets = [card.holder.id_number, card.holder.name]
        devices = KioskDevices(config, "kiosk-1", lambda f: f(), cards, idcard_url=f"serial://{reader.port}",
                               broker=mosquitto.address)
        devices.start()
        try:
            reader.place("elderly")
            wait_for(lambda: cards.records, timeout=20)
        finally:
            devices.stop()
    record = cards.records[0]
    assert record.elderly and record.id_hash
    try:
        with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
            taken = kiosk.request(TakeTicket(service_id="social", channel=Channel.KIOSK, priority=Priority.PRIORITY,
                                             id_hash=record.id_hash))
            assert taken.ok
        with HallClient(mosquitto.address, "test-hall", "console") as console:
            assert console.request(CallNext(window=1)).ok
            assert console.request(Complete(window=1)).ok
        with HallClient(mosquitto.address, "test-hall", "kiosk-1") as kiosk:
            rated = kiosk.rate(RatingSubmission(ticket_public_id=taken.outcome.ticket.public_id,
                                                channel=RatingChannel.KIOSK, level=Level.VERY_DISSATISFIED,
                                                tags=["态度不好"]))
            assert rated.ok, rated
        # The rating went up to the county: the outbox was drained.
        wait_for(lambda: any(b"/up/rating" in p for p in county_sniffer.payloads), timeout=30)
    finally:
        hub.stop()
        hall_sniffer.close()
        county_sniffer.close()
        county.stop()

    stored = b"".join(p.read_bytes() for p in (tmp_path / "data").iterdir() if p.is_file())
    published = b"\n".join(hall_sniffer.payloads + county_sniffer.payloads)
    logged = caplog.text.encode("utf-8")
    assert published and stored and logged
    for secret in secrets:
        for form in forms(secret):
            assert form not in published, "a full ID number or name was published on MQTT"
            assert form not in stored, "a full ID number or name was written to the hub's database"
            assert form not in logged, "a full ID number or name was logged"
    # The keyed hash is what the hall keeps for matching; it stays in the hall, off the county link.
    assert record.id_hash.encode() in stored
    assert record.id_hash.encode() not in b"\n".join(county_sniffer.payloads)
    # The masked form is for the kiosk's own screen only.
    assert record.id_masked.encode() not in published
