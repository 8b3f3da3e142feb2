from pathlib import Path

import pytest

from hallkit.catalog import CatalogError, import_catalog
from hallkit.cli import main
from hallkit.config import HallLevel, parse_config
from hallkit.testing import SMALL_HALL

CSV = Path(__file__).parents[2] / "hallkit" / "sample" / "hutubi-service-catalog.csv"


@pytest.mark.parametrize(("level", "kept"), [("township", 66), ("village", 25), ("community", 42)])
def test_import_keeps_what_the_level_handles(level, kept):
    result = import_catalog(CSV, HallLevel(level))
    assert len(result.services) == kept
    assert len(result.skipped) == 66 - kept
    assert all(row.reason.key == "catalog.skip_level" for row in result.skipped)


def test_import_reads_the_quirks():
    result = import_catalog(CSV, HallLevel.TOWNSHIP)
    ids = [s.id for s in result.services]
    assert len(set(ids)) == 66  # source_no repeats 65, ids come from seq
    # Both services numbered 65 are kept, under codes of their own, and the import says so.
    codes = [s.upstream_code for s in result.services]
    assert len(set(codes)) == 66
    by_name = {s.name: s.upstream_code for s in result.services}
    assert (by_name["在乡复员军人定期定量补助的认定"], by_name["各类优抚补助对象认定"]) == ("65", "65-2")
    assert [(n.row, n.reason.key, n.reason.params["no"], n.reason.params["code"]) for n in result.notes] == [
        (66, "catalog.duplicate_no", "65", "65-2")]
    first = result.services[0]
    assert (first.name, first.category, first.department, first.handling) == (
        "城乡最低生活保障对象认定", "行政确认", "民政局", "accept")
    # one prefix letter per counter group
    groups = {}
    for s in result.services:
        groups.setdefault(s.counter_group, set()).add(s.prefix)
    assert all(len(p) == 1 for p in groups.values())


def test_village_import_marks_handling():
    result = import_catalog(CSV, HallLevel.VILLAGE)
    by_name = {s.name: s for s in result.services}
    assert by_name["城乡最低生活保障对象认定"].handling == "accept"
    assert any(s.handling == "complete" for s in result.services)


@pytest.mark.parametrize(("level", "kept"), [("township", 66), ("village", 25)])
def test_imported_services_make_a_valid_config(level, kept):
    # The township keeps both services numbered 65: the config check would refuse them under one code.
    result = import_catalog(CSV, HallLevel(level))
    head = SMALL_HALL.split("[[services]]")[0]
    text = head + result.services_toml() + '\n[[windows]]\nnumber = 1\nname = "综合窗口"\nservices = ["*"]\n'
    config = parse_config(text)
    assert len(config.services) == kept


def test_every_repeat_of_a_number_gets_its_own_code(tmp_path):
    csv = tmp_path / "repeats.csv"
    rows = ["seq,source_no,name,category,township,village,community,window,department"]
    rows += [f"{i},{no},事项{i},行政确认,受理,/,/,窗口,民政局" for i, no in enumerate(["7", "7", "8", "7", ""], start=1)]
    csv.write_text("\n".join(rows) + "\n", "utf-8")
    result = import_catalog(csv, HallLevel.TOWNSHIP)
    assert [s.upstream_code for s in result.services] == ["7", "7-2", "8", "7-3", "s005"]
    assert [n.reason.params["code"] for n in result.notes] == ["7-2", "7-3"]


def test_gb18030_csv_and_bad_csv(tmp_path):
    gb = tmp_path / "gb.csv"
    gb.write_bytes(CSV.read_text("utf-8").encode("gb18030"))
    assert len(import_catalog(gb, HallLevel.TOWNSHIP).services) == 66
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n", "utf-8")
    with pytest.raises(CatalogError, match="missing column"):
        import_catalog(bad, HallLevel.TOWNSHIP)


def test_catalog_import_command(tmp_path, capsys):
    out = tmp_path / "services.toml"
    assert main(["catalog", "import", str(CSV), "--level", "village", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "25 services kept" in printed and "41 rows skipped" in printed
    assert "neither accepts nor completes" in printed
    # The village level does not handle the services numbered 65: nothing to say about them.
    assert "65-2" not in printed
    assert out.read_text("utf-8").count("[[services]]") == 25
    township = tmp_path / "township.toml"
    assert main(["catalog", "import", str(CSV), "--level", "township", "-o", str(township)]) == 0
    printed = capsys.readouterr().out
    assert "原文编号 65 重复" in printed and "source number 65 repeats" in printed and "65-2" in printed
    assert 'catalogue_no = "65-2"' in township.read_text("utf-8")
    assert main(["catalog", "import", str(tmp_path / "nope.csv"), "--level", "village"]) == 1
