"""Appointments (预约): booked visits a resident checks in for at the kiosk with the ID card.

The hall receives its appointments from a booking system as a list of ID number, service
and time slot; ``hall appointments import`` keeps only the keyed hash of each number
(house rule 4), so the hub can match a card swiped at the kiosk without holding anyone's
number. A kiosk asks with the card's hash (``AppointmentQuery``); the hub answers with that
resident's appointments today not yet checked in. Checking in is an ordinary ``take``
command whose request id is ``appt-<appointment id>``: the queue's idempotency then makes a
second check-in return the same ticket, and tells this part which appointments are used.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from hallkit.broker.hub import HUB_DEVICE, Hub, bad_reply_to
from hallkit.contracts.hall import AppointmentList, AppointmentQuery, AppointmentView, Topics, check_in_request_id
from pydantic import BaseModel, ValidationError

from hallkit.config import DeviceKind, HallConfig
from hallkit.privacy import id_hash

log = logging.getLogger("hallkit.appointments")

MAY_ASK = (DeviceKind.KIOSK, DeviceKind.COUNTER)


def create_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE IF NOT EXISTS appointments (
            appointment_id TEXT PRIMARY KEY,
            id_hash TEXT NOT NULL,
            service_id TEXT NOT NULL,
            starts TEXT NOT NULL,
            ends TEXT NOT NULL
        )"""
    )
    conn.execute("CREATE INDEX IF NOT EXISTS appointments_by_resident ON appointments (id_hash)")


def add_appointment(conn: sqlite3.Connection, config: HallConfig, id_number: str, service_id: str,
                    starts: datetime, ends: datetime) -> str:
    """Keep one appointment (by the number's keyed hash only); the same booking twice is kept once."""
    config.service(service_id)  # KeyError for a service this hall does not have
    # A booking list without a zone means the hall's local time.
    starts = starts if starts.tzinfo else starts.replace(tzinfo=config.hall.zone)
    ends = ends if ends.tzinfo else ends.replace(tzinfo=config.hall.zone)
    if ends <= starts:
        raise ValueError(f"the slot ends ({ends:%H:%M}) before it starts ({starts:%H:%M})")
    hashed = id_hash(config.privacy.id_hash_key, id_number)
    appointment_id = hashlib.sha256(f"{hashed}|{service_id}|{starts.isoformat()}".encode()).hexdigest()[:20]
    conn.execute("INSERT OR IGNORE INTO appointments VALUES (?, ?, ?, ?, ?)",
                 (appointment_id, hashed, service_id, starts.isoformat(), ends.isoformat()))
    return appointment_id


class ImportedRow(BaseModel):
    row: int
    appointment_id: str | None
    problem: str = ""


def import_appointments(conn: sqlite3.Connection, config: HallConfig, path: Path) -> list[ImportedRow]:
    """Read a CSV (id_number, service_id, starts, ends; ISO times) and keep each row's hash only."""
    results: list[ImportedRow] = []
    with path.open(encoding="utf-8-sig", newline="") as file:
        for line, row in enumerate(csv.DictReader(file), start=2):
            try:
                appointment_id = add_appointment(conn, config, (row.get("id_number") or "").strip(),
                                                 (row.get("service_id") or "").strip(),
                                                 datetime.fromisoformat((row.get("starts") or "").strip()),
                                                 datetime.fromisoformat((row.get("ends") or "").strip()))
            except KeyError as exc:
                results.append(ImportedRow(row=line, appointment_id=None, problem=f"unknown service {exc}"))
            except ValueError as exc:
                results.append(ImportedRow(row=line, appointment_id=None, problem=str(exc)))
            else:
                results.append(ImportedRow(row=line, appointment_id=appointment_id))
    return results


def appointments_today(conn: sqlite3.Connection, config: HallConfig, hashed: str, now: datetime,
                       checked_in: set[str]) -> list[AppointmentView]:
    today = now.astimezone(config.hall.zone).date()
    views = []
    for appointment_id, service_id, starts, ends in conn.execute(
            "SELECT appointment_id, service_id, starts, ends FROM appointments WHERE id_hash = ? ORDER BY starts",
            (hashed,)):
        start, end = datetime.fromisoformat(starts), datetime.fromisoformat(ends)
        if start.astimezone(config.hall.zone).date() != today or appointment_id in checked_in:
            continue
        if service_id not in {s.id for s in config.services}:
            continue  # a service removed from this hall since the booking: a window sorts it out
        views.append(AppointmentView(appointment_id=appointment_id, service_id=service_id,
                                     service_name=config.service(service_id).name, starts=start, ends=end))
    return views


class AppointmentsPart:
    """Answers kiosks' appointment queries (a part of the hub)."""

    def __init__(self, config: HallConfig) -> None:
        self.config = config
        self.topics = Topics(config.hall.id)
        self.answered = 0
        self.hub: Hub | None = None

    def attach(self, hub: Hub) -> None:
        self.hub = hub
        with hub.queue.lock, hub.queue.store.transaction() as conn:
            create_table(conn)

    def subscriptions(self) -> Sequence[str]:
        return [self.topics.appointment_queries]

    def handle(self, topic: str, payload: bytes) -> None:
        assert self.hub is not None
        sender = Topics.device_of_appointment(topic)
        try:
            query = AppointmentQuery.model_validate_json(payload)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            self.hub.refuse(topic, None, "hub.invalid", f"{'.'.join(map(str, first['loc']))}: {first['msg']}"[:300])
            return
        device = self.hub.devices.get(sender)
        if query.device != sender:
            self.hub.refuse(topic, None, "hub.device_mismatch", f"{query.device} on {topic}")
        elif device is None:
            self.hub.refuse(topic, None, "hub.unknown_device", sender)
        elif device.kind not in MAY_ASK:
            self.hub.refuse(topic, None, "hub.not_allowed", f"{device.kind.value} {device.id} may not look up "
                                                              "appointments")
        elif query.reply_to != (own := self.topics.appointment_reply(sender)):
            self.hub.refuse(topic, None, "hub.bad_reply_to", bad_reply_to(query.reply_to, own))
        else:
            now = self.hub.queue.clock()
            with self.hub.queue.lock:
                conn = self.hub.queue.store.conn
                ids = [row[0] for row in conn.execute(
                    "SELECT appointment_id FROM appointments WHERE id_hash = ?", (query.id_hash,))]
                checked_in = {a for a in ids if self.hub.queue.store.reply_for(check_in_request_id(a)) is not None}
                found = appointments_today(conn, self.config, query.id_hash, now, checked_in)
            answer = AppointmentList(device=HUB_DEVICE, request_id=query.request_id, appointments=found)
            self.hub.client.publish(query.reply_to, answer.model_dump_json(), qos=1)
            self.answered += 1
            log.info("appointments asked by %s: %d today", sender, len(found))

    def status(self) -> dict[str, str | int | float | bool | None]:
        return {"appointments.answered": self.answered}

    def close(self) -> None:
        return None
