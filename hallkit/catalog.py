"""Import a county's published service catalogue into a hall's ``[[services]]`` section.

The catalogue is a CSV with one row a service and, for each hall level
(township, village, community), whether that level accepts (受理) it,
completes (办理) it, or does not handle it (``/``). Only rows this hall's
level handles are kept; every skipped row is reported with its reason.

Known quirks of the Hutubi catalogue (see the seeds' README): ``source_no``
keeps the document's own numbering, which skips 64 and repeats 65, so the
row's ``seq`` is the id; blank window and department cells were already
filled from the row above.

The source number is the code a service's ratings carry to the county
(``Service.upstream_code``), and two services under one code would merge
there. A repeated number is two different services (the document's typo, not
a duplicate row), so both are kept: the first keeps the number, each later
one gets ``<no>-2``, ``<no>-3`` …, a code no source number has (they are
digits only), and the import notes every such row for the county to confirm.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import tomli_w
from pydantic import BaseModel

from hallkit.config import READABLE_PREFIXES, HallLevel, Handling, Service
from hallkit.i18n import Message

HANDLING_WORDS = {"受理": Handling.ACCEPT, "办理": Handling.COMPLETE}
NOT_HANDLED = {"/", "／", "", "-"}
REQUIRED_COLUMNS = ("seq", "name", "category", "township", "village", "community", "window", "department")


class CatalogError(Exception):
    """The CSV cannot be read as a catalogue at all."""


class SkippedRow(BaseModel):
    row: int
    name: str
    reason: Message


class CatalogImport(BaseModel):
    level: HallLevel
    services: list[Service]
    skipped: list[SkippedRow]
    notes: list[SkippedRow]

    def services_toml(self) -> str:
        header = (
            f"# Services for a {self.level.value} hall, imported from the county catalogue.\n"
            "# Prefix letters are one per counter group; edit freely.\n\n"
        )
        body = tomli_w.dumps({"services": [s.model_dump(mode="json", exclude_defaults=True) for s in self.services]})
        return header + body


def import_catalog(path: Path | str, level: HallLevel) -> CatalogImport:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CatalogError(f"cannot read {path}: {exc.strerror or exc}") from None
    text = _decode(raw)
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise CatalogError(
            f"{path}: not a service catalogue: missing column(s) {', '.join(missing)}; "
            f"expected {', '.join(REQUIRED_COLUMNS)}"
        )
    services: list[Service] = []
    skipped: list[SkippedRow] = []
    notes: list[SkippedRow] = []
    prefixes: dict[str, str] = {}
    codes: set[str] = set()
    # Row numbers as a person sees them in a spreadsheet: the header is row 1.
    for line, row in enumerate(reader, start=2):
        name = (row.get("name") or "").strip()
        if not name:
            skipped.append(SkippedRow(row=line, name="", reason=Message(key="catalog.skip_blank",
                                                                        params={"row": line})))
            continue
        word = (row.get(level.value) or "").strip()
        if word in NOT_HANDLED or word not in HANDLING_WORDS:
            skipped.append(SkippedRow(row=line, name=name, reason=Message(
                key="catalog.skip_level", params={"row": line, "name": name, "level": level.value})))
            continue
        number = (row.get("source_no") or "").strip()
        code = _distinct_code(number, codes)
        if code != number:
            notes.append(SkippedRow(row=line, name=name, reason=Message(
                key="catalog.duplicate_no", params={"row": line, "name": name, "no": number, "code": code})))
        if code:
            codes.add(code)
        group = (row.get("window") or "").strip() or (row.get("department") or "").strip()
        if group not in prefixes:
            prefixes[group] = READABLE_PREFIXES[len(prefixes) % len(READABLE_PREFIXES)]
        seq = int(row["seq"]) if row["seq"].strip().isdigit() else line - 1
        services.append(Service(
            id=f"s{seq:03d}",
            name=name,
            prefix=prefixes[group],
            category=(row.get("category") or "").strip() or "公共服务",
            department=(row.get("department") or "").strip(),
            counter_group=group,
            handling=HANDLING_WORDS[word],
            catalogue_no=code,
        ))
    return CatalogImport(level=level, services=services, skipped=skipped, notes=notes)


def _distinct_code(number: str, taken: set[str]) -> str:
    """``number`` itself, or for a repeat the first of ``number-2``, ``number-3`` … not yet taken."""
    if not number or number not in taken:
        return number
    suffix = 2
    while f"{number}-{suffix}" in taken:
        suffix += 1
    return f"{number}-{suffix}"


def _decode(raw: bytes) -> str:
    """County spreadsheets come as UTF-8 (with or without BOM) or GB18030 from Excel."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CatalogError("the file is neither UTF-8 nor GB18030 text")
