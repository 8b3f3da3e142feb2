"""docs/contract.md and the models in broker/contract.py stay in step; schemas are written."""

import json
import re
from pathlib import Path

from hallkit.contracts.hall import PAYLOADS, TOPICS, Topics

from hallkit.cli import main
from hallkit.queue.models import EVENT

DOC = (Path(__file__).parents[2] / "docs" / "contract.md").read_text("utf-8")


def test_every_topic_is_documented_with_its_properties():
    for spec in TOPICS:
        row = f"| `{spec.pattern}` | `{spec.payload}` | {spec.publisher} | {spec.subscribers} | {spec.qos} | " \
              f"{'yes' if spec.retained else 'no'} |"
        assert row in DOC, f"docs/contract.md lacks or misdescribes {spec.pattern}"
    documented = re.findall(r"^\| `(hall/v1/[^`]+)`", DOC, re.M)
    assert sorted(documented) == sorted(s.pattern for s in TOPICS)


def test_every_payload_field_is_documented():
    for name, model in PAYLOADS.items():
        section = DOC.split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
        for field in model.model_fields:
            assert f"`{field}`" in section, f"{name}.{field} is not in docs/contract.md"


def test_every_event_type_is_documented():
    event_types = EVENT.json_schema()["discriminator"]["mapping"]
    assert len(event_types) == 10
    for event_type in event_types:
        assert f"`{event_type}`" in DOC


def test_topic_builders_match_the_patterns():
    topics = Topics("h1")
    built = {topics.command("d"), topics.reply("d"), topics.queue_state, topics.event("e"),
             topics.device_status("d"), topics.hub_status, topics.errors, topics.rating_submit("d"),
             topics.case_step("d"), topics.rating_reply("d"), topics.pad_screen("d"),
             topics.alert("d"), topics.appointment_query("d"), topics.appointment_reply("d")}
    patterns = {s.pattern.format(hall="h1", device="d", event_type="e") for s in TOPICS}
    assert built == patterns
    assert Topics.device_of("hall/v1/h1/cmd/kiosk-1") == "kiosk-1"


def test_schema_command_writes_every_payload(tmp_path):
    assert main(["schema", "--out", str(tmp_path)]) == 0
    written = {p.name.removesuffix(".schema.json") for p in tmp_path.iterdir()}
    assert written == set(PAYLOADS)
    schema = json.loads((tmp_path / "CommandRequest.schema.json").read_text())
    assert "reply_to" in schema["properties"]
