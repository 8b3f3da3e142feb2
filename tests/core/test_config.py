from pathlib import Path

import pytest

from hallkit.cli import main
from hallkit.config import ConfigError, load_config, parse_config
from hallkit.testing import SMALL_HALL, write_hall_config


def test_sample_config_is_valid(sample_config):
    assert sample_config.hall.level == "township"
    assert len(sample_config.services) == 66
    assert sample_config.window(1).comprehensive
    # window 3 serves exactly the labour-security group
    labour = {s.id for s in sample_config.services if s.counter_group == "乡镇劳动保障所"}
    assert sample_config.served_by(sample_config.window(3)) == labour


def test_example_has_a_fresh_secret_each_time(sample_config):
    from hallkit.commands import example_config
    assert example_config() != example_config()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('level = "village"', 'level = "city"'), "hall.level: Input should be 'township', 'village' or 'community' (got 'city')"),
        (('region_code = "652323100201"', 'region_code = "65"'), "hall.region_code: String should match pattern"),
        (('prefix = "B"', 'prefix = "BB"'), "services[pension].prefix"),
        (('prefix = "B"', 'prefix = "O"'), "services[pension].prefix: prefix 'O' reads as a digit"),
        (('prefix = "B"', 'prefix = "I"'), "services[pension].prefix: prefix 'I' reads as a digit"),
        (('services = ["permit"]', 'services = ["nothing"]'), "window 3 serves unknown service 'nothing'"),
        (('staff_a = "b1"', 'staff_a = "ghost"'), "window 2 names unknown staff 'ghost'"),
        (('id = "permit"', 'id = "pension"'), "services: 'pension' appears twice"),
        (('max_priority_in_a_row = 2', 'max_priority_in_a_row = 0'), "queue.max_priority_in_a_row: Input should be greater than or equal to 1 (got 0)"),
        (('[queue]', '[queue]\nspeed = 3'), "queue.speed: unknown key"),
        (('id_hash_key = "test-secret-0123456789"', 'id_hash_key = "short"'), "privacy.id_hash_key: String should have at least 16 characters"),
        (('name = "测试村便民服务站"', ''), "hall.name: required key is missing"),
    ],
)
def test_config_errors_name_the_key(change, expected):
    old, new = change
    assert old in SMALL_HALL
    with pytest.raises(ConfigError) as err:
        parse_config(SMALL_HALL.replace(old, new, 1))
    assert any(expected in p for p in err.value.problems), err.value.problems


def test_two_services_under_one_upstream_code_are_refused(tmp_path: Path, capsys):
    coded = SMALL_HALL.replace('prefix = "A"', 'prefix = "A"\ncatalogue_no = "65"', 1)
    both = coded.replace('prefix = "B"', 'prefix = "B"\ncatalogue_no = "65"', 1)
    with pytest.raises(ConfigError) as err:
        parse_config(both)
    assert err.value.problems == [
        "services 'social' and 'pension' would both go up to the county as code '65': give one a catalogue_no "
        "of its own (e.g. catalogue_no = \"65-2\", as 'hall catalog import' does)"]
    # A catalogue number equal to another service's id collides with that id going up.
    with pytest.raises(ConfigError, match="'social' and 'permit' would both go up to the county as code 'permit'"):
        parse_config(SMALL_HALL.replace('prefix = "A"', 'prefix = "A"\ncatalogue_no = "permit"', 1))
    assert parse_config(coded.replace('prefix = "B"', 'prefix = "B"\ncatalogue_no = "65-2"', 1))
    path = tmp_path / "hall.toml"
    path.write_text(both, "utf-8")
    assert main(["config", "check", str(path)]) == 1
    assert "'social' and 'pension'" in capsys.readouterr().out


def test_toml_syntax_error_is_reported_with_line():
    with pytest.raises(ConfigError) as err:
        parse_config("[hall\nid = 1")
    assert "not valid TOML" in err.value.problems[0]
    assert "line 1" in err.value.problems[0]


def test_orphan_service_is_refused():
    text = SMALL_HALL.replace('services = ["*"]', 'services = ["social"]')
    with pytest.raises(ConfigError, match="no window serves these services"):
        parse_config(text.replace('services = ["pension"]', 'services = ["social"]'))


def test_config_check_command(tmp_path: Path, capsys):
    good = write_hall_config(tmp_path / "hall.toml", SMALL_HALL)
    assert main(["config", "check", str(good)]) == 0
    assert "configuration is valid" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(SMALL_HALL.replace('prefix = "A"', 'prefix = "1"'), "utf-8")
    assert main(["config", "check", str(bad), "--json"]) == 1
    out = capsys.readouterr().out
    assert '"valid": false' in out and "services[social].prefix" in out
    assert main(["config", "check", str(tmp_path / "missing.toml")]) == 1
    assert "file not found" in capsys.readouterr().out


def test_config_example_command_writes_a_valid_file(tmp_path: Path):
    out = tmp_path / "hall.toml"
    assert main(["config", "example", "-o", str(out)]) == 0
    assert load_config(out).hall.id == "xinghua-town"


def test_opening_hours(sample_config):
    from datetime import datetime
    zone = sample_config.hall.zone
    hours = sample_config.hours
    assert hours.is_open(datetime(2026, 11, 23, 10, 30, tzinfo=zone))      # Monday regular
    assert hours.is_open(datetime(2026, 11, 23, 14, 0, tzinfo=zone))       # Monday lunchtime, extended
    assert not hours.is_open(datetime(2026, 11, 23, 20, 0, tzinfo=zone))   # Monday evening
    assert hours.is_open(datetime(2026, 11, 28, 11, 0, tzinfo=zone))       # Saturday extended
    assert not hours.is_open(datetime(2026, 11, 29, 11, 0, tzinfo=zone))   # Sunday
    assert hours.next_opening(datetime(2026, 11, 28, 15, 0, tzinfo=zone)) == datetime(2026, 11, 30, 10, 0, tzinfo=zone)
