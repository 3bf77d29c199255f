"""The hospital's code tables, kept as data in ``mappings/`` and checked before use.

Each table is a UTF-8 CSV file with a header row (a BOM, as Excel's "CSV UTF-8" writes it, is
accepted). :func:`check_mappings` reads every file and reports *every* problem with its file and
physical line, so that hospital IT fixes a whole file in one pass; :func:`load_mappings` returns
the tables or raises :class:`MappingsError` with all the problems. ``hospital-adapter
check-mappings`` and start-up both go through here.

Files and columns (every cell is required; surrounding whitespace, full-width spaces included,
is stripped silently; blank lines are ignored):

- departments.csv: code, name_zh, name_en, location, release_time, release_days_ahead
- doctors.csv: code, name_zh, name_en, department_code, title_zh, title_en, service_code
- document_types.csv: code, name_zh, name_en, hl7_type
- sex.csv: hl7_code, gb_code, name_zh, name_en
- fee_items.csv: code, name_zh, name_en, kind, amount (yuan, e.g. ``25.00``)
- hl7_profile.toml: read by :func:`adapter.his.profile.load_profile`

Document types and PID-3.5 (HL7 v2.5 table 0203, "Identifier type"). Table 0203 has codes for
the first three documents below; the Chinese travel and residence permits have none, and HL7 lets
a site add local codes, so the shipped table uses short local codes that no HL7 version assigns.
A hospital whose HIS already uses other codes changes document_types.csv, not the code:

- RESIDENT_ID 居民身份证 -> ``NNCHN``: table 0203 "NNxxx, national person identifier", xxx being the
  ISO 3166 alpha-3 country code. A child's 户口簿 number is the same citizen number, so it is
  entered as RESIDENT_ID.
- PASSPORT 护照 -> ``PPN``: table 0203 "passport number" (issuing country in PID-3.4/CX-9).
- FOREIGN_PERMANENT_RESIDENT 外国人永久居留身份证 -> ``PRC``: table 0203 "permanent resident card
  number" (added in v2.5).
- HK_MACAO_TRAVEL_PERMIT 港澳居民来往内地通行证 -> ``HMTP`` (local).
- TAIWAN_TRAVEL_PERMIT 台湾居民来往大陆通行证 -> ``TWTP`` (local).
- HMT_RESIDENCE_PERMIT 港澳台居民居住证 -> ``HMTRP`` (local). Its number has the 18-digit resident
  ID layout and checksum (prefixes 81, 82, 83), but it is a different document, so a different
  type.

Identifier type codes are at most 5 characters: the length of CX-5 in HL7 v2.5.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from adapter.his.profile import load_profile, load_queue_statuses

DEPARTMENTS_FILE = "departments.csv"
DOCTORS_FILE = "doctors.csv"
DOCUMENT_TYPES_FILE = "document_types.csv"
SEX_FILE = "sex.csv"
FEE_ITEMS_FILE = "fee_items.csv"
PROFILE_FILE = "hl7_profile.toml"

FEE_KINDS = ("registration", "examination", "laboratory", "drug", "treatment", "other")
REQUIRED_DOCUMENT_TYPES = ("RESIDENT_ID", "PASSPORT")
# HL7 v2.5 table 0001 (administrative sex).
HL7_SEX_CODES = ("F", "M", "O", "U", "A", "N")
# The sexes the adapter itself writes: F/M from the resident ID's sex digit, U when unknown.
REQUIRED_SEX_CODES = ("F", "M", "U")
# GB/T 2261.1-2003: 0 未知的性别, 1 男性, 2 女性, 9 未说明的性别.
GB_SEX_CODES = ("0", "1", "2", "9")
MAX_RELEASE_DAYS_AHEAD = 60

_CODE_RE = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_HL7_ID_TYPE_RE = re.compile(r"[A-Za-z0-9]{1,5}")
_TIME_RE = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_DAYS_RE = re.compile(r"[0-9]{1,3}")
# Yuan: digits, optionally a point and one or two digits. No sign, exponent or separators.
_YUAN_RE = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?")
# HL7 v2 default delimiters (MSH-1, MSH-2): a location holding one would break PV1-3.
_HL7_DELIMITERS = "|^~\\&"
# str.strip() already removes Unicode whitespace, the full-width space U+3000 included.
_INVISIBLE = "\ufeff\u200b"


@dataclass(frozen=True)
class MappingProblem:
    """One problem in one mappings file; line 0 means the whole file."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class MappingsError(Exception):
    """The mappings cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[MappingProblem]) -> None:
        self.problems = list(problems)
        super().__init__(
            f"{len(self.problems)} problem(s) in the mappings:\n"
            + "\n".join(str(p) for p in self.problems)
        )


@dataclass(frozen=True)
class Department:
    """A clinical department that takes bookings."""

    code: str
    name_zh: str
    name_en: str
    location: str  # HIS point of care, sent in PV1-3
    release_time: dt.time  # when a date's slots open, hospital local time
    release_days_ahead: int  # how many days before the visit date they open


@dataclass(frozen=True)
class Doctor:
    """A doctor (or a general clinic) that can be booked."""

    code: str
    name_zh: str
    name_en: str
    department_code: str
    title_zh: str
    title_en: str
    service_code: str  # the registration type: a fee item of kind "registration"


@dataclass(frozen=True)
class DocumentType:
    """An identity document accepted for real-name registration."""

    code: str
    name_zh: str
    name_en: str
    hl7_type: str  # PID-3.5, HL7 table 0203


@dataclass(frozen=True)
class Sex:
    """HL7 table 0001 code and its GB/T 2261.1 equivalent."""

    hl7_code: str
    gb_code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class FeeItem:
    """A chargeable item; amounts are integer fen."""

    code: str
    name_zh: str
    name_en: str
    kind: str
    amount_fen: int


@dataclass(frozen=True)
class Mappings:
    """All code tables of one hospital, keyed by code (sexes by HL7 code)."""

    departments: dict[str, Department]
    doctors: dict[str, Doctor]
    document_types: dict[str, DocumentType]
    sexes: dict[str, Sex]
    fee_items: dict[str, FeeItem]

    def fee_fen(self, service_code: str) -> int:
        """Price in fen of a fee item; KeyError if the code is unknown."""
        return self.fee_items[service_code].amount_fen

    def doctors_of(self, department_code: str) -> list[Doctor]:
        """Doctors of one department, in file order."""
        return [d for d in self.doctors.values() if d.department_code == department_code]

    def document_type_by_hl7(self, hl7_type: str) -> DocumentType | None:
        """The document type whose PID-3.5 code is ``hl7_type``, if any."""
        for document_type in self.document_types.values():
            if document_type.hl7_type == hl7_type:
                return document_type
        return None


def yuan_to_fen(text: str) -> int:
    """Parse a positive yuan amount such as ``"25.00"`` into fen; ValueError otherwise."""
    if not _YUAN_RE.fullmatch(text):
        raise ValueError(
            f"amount {text!r} is not a yuan amount like 25.00 "
            "(digits, at most 2 decimals, no sign, exponent or separators)"
        )
    fen = int(Decimal(text) * 100)
    if fen <= 0:
        raise ValueError(f"amount {text!r} must be greater than 0")
    return fen


def default_mappings_dir() -> Path:
    """ADAPTER_MAPPINGS_DIR, else ./mappings, else the mappings folder beside the package."""
    configured = os.environ.get("ADAPTER_MAPPINGS_DIR")
    if configured:
        return Path(configured)
    here = Path.cwd() / "mappings"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parent.parent / "mappings"


def check_mappings(directory: Path) -> list[MappingProblem]:
    """Every problem in the mappings of ``directory``; empty when they can be used."""
    return _read(directory)[1]


def load_mappings(directory: Path) -> Mappings:
    """Read and check the mappings; MappingsError lists all problems."""
    mappings, problems = _read(directory)
    if problems:
        raise MappingsError(problems)
    return mappings


# --- reading ---------------------------------------------------------------------------------

_COLUMNS: dict[str, tuple[str, ...]] = {
    DEPARTMENTS_FILE: (
        "code", "name_zh", "name_en", "location", "release_time", "release_days_ahead",
    ),
    DOCTORS_FILE: (
        "code", "name_zh", "name_en", "department_code", "title_zh", "title_en", "service_code",
    ),
    DOCUMENT_TYPES_FILE: ("code", "name_zh", "name_en", "hl7_type"),
    SEX_FILE: ("hl7_code", "gb_code", "name_zh", "name_en"),
    FEE_ITEMS_FILE: ("code", "name_zh", "name_en", "kind", "amount"),
}
_FILE_ORDER = (*_COLUMNS, PROFILE_FILE)

_Row = dict[str, str]
_T = TypeVar("_T")


class _Problems(list[MappingProblem]):
    def add(self, file: str, line: int, message: str) -> None:
        self.append(MappingProblem(file, line, message))


@dataclass
class _Table:
    """The rows of one file, or ``usable=False`` when the file could not be read at all.

    ``keys`` holds the key (code) of every row, bad rows included, so that a reference to a row
    already reported as bad is not reported a second time. Rows with an empty cell are kept (their
    other cells are still checked) and listed in ``incomplete``.
    """

    file: str
    rows: list[tuple[int, _Row]]
    usable: bool = True
    keys: set[str] = field(default_factory=set)
    incomplete: set[int] = field(default_factory=set)  # lines with an empty cell


def _read(directory: Path) -> tuple[Mappings, list[MappingProblem]]:
    problems = _Problems()
    tables = {name: _read_table(directory, name, columns, problems)
              for name, columns in _COLUMNS.items()}

    fee_items = _build(tables[FEE_ITEMS_FILE], problems, _fee_item)
    departments = _build(tables[DEPARTMENTS_FILE], problems, _department)
    document_types = _build(tables[DOCUMENT_TYPES_FILE], problems, _document_type)
    sexes = _build(tables[SEX_FILE], problems, _sex, key="hl7_code")
    doctors = _build(tables[DOCTORS_FILE], problems, _doctor)

    _check_doctor_references(tables, problems)
    _check_document_types(tables[DOCUMENT_TYPES_FILE], problems)
    _check_required(tables[SEX_FILE], REQUIRED_SEX_CODES, "sex hl7_code", problems)
    _check_profile(directory / PROFILE_FILE, problems)

    order = {name: index for index, name in enumerate(_FILE_ORDER)}
    problems.sort(key=lambda p: (order.get(p.file, len(order)), p.line))
    mappings = Mappings(departments=departments, doctors=doctors,
                        document_types=document_types, sexes=sexes, fee_items=fee_items)
    return mappings, list(problems)


def _clean(cell: str) -> str:
    return cell.strip().strip(_INVISIBLE).strip()


def _read_table(directory: Path, name: str, columns: tuple[str, ...],
                problems: _Problems) -> _Table:
    path = directory / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        problems.add(name, 0, "file is missing")
        return _Table(name, [], usable=False)
    except OSError as exc:
        problems.add(name, 0, f"cannot read the file ({exc.strerror or exc})")
        return _Table(name, [], usable=False)

    text = _decode(name, data, problems)
    if text is None:
        return _Table(name, [], usable=False)

    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header: list[str] = []
        for cells in reader:  # the header is the first line that is not blank
            if any(_clean(c) for c in cells):
                header = cells
                break
        if not header:
            problems.add(name, 0, "file is empty: a header row is needed "
                                  f"({', '.join(columns)})")
            return _Table(name, [], usable=False)
        header = [_clean(c).lower() for c in header]
        missing = [c for c in columns if c not in header]
        unknown = [c for c in header if c not in columns]
        duplicated = sorted({c for c in header if c and header.count(c) > 1})
        if missing:
            problems.add(name, 0, f"missing column(s): {', '.join(missing)}")
        if unknown:
            problems.add(name, 0, "unknown column(s): "
                                  f"{', '.join(c or '(empty)' for c in unknown)}; "
                                  f"expected {', '.join(columns)}")
        if duplicated:
            problems.add(name, 0, f"column(s) appear twice: {', '.join(duplicated)}")
        if missing or duplicated:
            return _Table(name, [], usable=False)

        table = _Table(name, [])
        key_index = header.index(columns[0])  # every table's key is its first column
        line_num = reader.line_num
        for cells in reader:
            # The physical line the record starts on: a quoted cell may span lines.
            line, line_num = line_num + 1, reader.line_num
            if not any(_clean(c) for c in cells):
                continue  # blank line, or an Excel row of empty cells
            if key_index < len(cells):
                table.keys.add(_clean(cells[key_index]))
            if len(cells) != len(header):
                problems.add(name, line, f"expected {len(header)} cells, found {len(cells)}")
                continue
            row = {column: _clean(cell) for column, cell in zip(header, cells, strict=True)}
            for column in columns:
                if not row[column]:
                    problems.add(name, line, f"{column} is empty")
                    table.incomplete.add(line)
                elif "\n" in row[column] or "\r" in row[column]:
                    problems.add(name, line, f"{column} contains a line break")
                    table.incomplete.add(line)
            table.rows.append((line, row))
        return table
    except csv.Error as exc:
        problems.add(name, reader.line_num, f"not a readable CSV file: {exc}")
        return _Table(name, [], usable=False)


def _decode(name: str, data: bytes, problems: _Problems) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Name every line that is not UTF-8 (0x0A never occurs inside a UTF-8 sequence).
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            problems.add(name, number,
                         f"not UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} "
                         "of the line); save the file as UTF-8 (Excel: \"CSV UTF-8\")")
    return None


def _build(table: _Table, problems: _Problems,
           builder: Callable[[str, int, _Row, _Problems], _T | None],
           key: str = "code") -> dict[str, _T]:
    """Build the valid rows, reporting duplicate keys."""
    items: dict[str, _T] = {}
    first_line: dict[str, int] = {}
    for line, row in table.rows:
        code = row[key]
        if not code:
            continue  # reported as empty
        if code in first_line:
            problems.add(table.file, line,
                         f"duplicate {key} {code!r} (first on line {first_line[code]})")
            continue
        first_line[code] = line
        item = builder(table.file, line, row, problems)
        if item is not None and line not in table.incomplete:
            items[code] = item
    return items


def _check_code(file: str, line: int, row: _Row, column: str, problems: _Problems) -> bool:
    if _CODE_RE.fullmatch(row[column]):
        return True
    problems.add(file, line, f"{column} {row[column]!r} must be 1 to 40 of A-Z a-z 0-9 _ . -")
    return False


def _department(file: str, line: int, row: _Row, problems: _Problems) -> Department | None:
    ok = _check_code(file, line, row, "code", problems)
    location = row["location"]
    if any(ch in location for ch in _HL7_DELIMITERS):
        problems.add(file, line, f"location {location!r} must not contain an HL7 delimiter "
                                 f"({' '.join(_HL7_DELIMITERS)})")
        ok = False
    release_time = _parse_time(row["release_time"])
    if release_time is None and row["release_time"]:
        problems.add(file, line,
                     f"release_time {row['release_time']!r} must be HH:MM between 00:00 and 23:59")
        ok = False
    days = row["release_days_ahead"]
    if not days:
        ok = False
    elif not _DAYS_RE.fullmatch(days) or int(days) > MAX_RELEASE_DAYS_AHEAD:
        problems.add(file, line, f"release_days_ahead {days!r} must be a whole number "
                                 f"from 0 to {MAX_RELEASE_DAYS_AHEAD}")
        ok = False
    if not ok or release_time is None:
        return None
    return Department(code=row["code"], name_zh=row["name_zh"], name_en=row["name_en"],
                      location=location, release_time=release_time,
                      release_days_ahead=int(days))


def _parse_time(text: str) -> dt.time | None:
    # One-digit hours are accepted because Excel shows and saves 07:30 as 7:30.
    match = _TIME_RE.fullmatch(text)
    if not match:
        return None
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        return None
    return dt.time(hour, minute)


def _doctor(file: str, line: int, row: _Row, problems: _Problems) -> Doctor | None:
    # References are checked once all files are read (_check_doctor_references).
    if not _check_code(file, line, row, "code", problems):
        return None
    return Doctor(code=row["code"], name_zh=row["name_zh"], name_en=row["name_en"],
                  department_code=row["department_code"], title_zh=row["title_zh"],
                  title_en=row["title_en"], service_code=row["service_code"])


def _document_type(file: str, line: int, row: _Row, problems: _Problems) -> DocumentType | None:
    ok = _check_code(file, line, row, "code", problems)
    if row["hl7_type"] and not _HL7_ID_TYPE_RE.fullmatch(row["hl7_type"]):
        problems.add(file, line, f"hl7_type {row['hl7_type']!r} must be 1 to 5 of A-Z a-z 0-9 "
                                 "(PID-3.5, HL7 table 0203)")
        ok = False
    if not ok:
        return None
    return DocumentType(code=row["code"], name_zh=row["name_zh"], name_en=row["name_en"],
                        hl7_type=row["hl7_type"])


def _sex(file: str, line: int, row: _Row, problems: _Problems) -> Sex | None:
    ok = True
    if row["hl7_code"] not in HL7_SEX_CODES:
        problems.add(file, line, f"hl7_code {row['hl7_code']!r} is not in HL7 table 0001 "
                                 f"({', '.join(HL7_SEX_CODES)})")
        ok = False
    if row["gb_code"] and row["gb_code"] not in GB_SEX_CODES:
        problems.add(file, line, f"gb_code {row['gb_code']!r} is not a GB/T 2261.1 code "
                                 f"({', '.join(GB_SEX_CODES)})")
        ok = False
    if not ok:
        return None
    return Sex(hl7_code=row["hl7_code"], gb_code=row["gb_code"], name_zh=row["name_zh"],
               name_en=row["name_en"])


def _fee_item(file: str, line: int, row: _Row, problems: _Problems) -> FeeItem | None:
    ok = _check_code(file, line, row, "code", problems)
    if row["kind"] and row["kind"] not in FEE_KINDS:
        problems.add(file, line, f"kind {row['kind']!r} must be one of {', '.join(FEE_KINDS)}")
        ok = False
    if not row["amount"]:
        return None
    try:
        amount_fen = yuan_to_fen(row["amount"])
    except ValueError as exc:
        problems.add(file, line, str(exc))
        return None
    if not ok:
        return None
    return FeeItem(code=row["code"], name_zh=row["name_zh"], name_en=row["name_en"],
                   kind=row["kind"], amount_fen=amount_fen)


def _first_rows(table: _Table, key: str = "code") -> list[tuple[int, _Row]]:
    """Rows with a key, duplicates (reported by _build) left out."""
    seen: set[str] = set()
    rows = []
    for line, row in table.rows:
        if row[key] and row[key] not in seen:
            seen.add(row[key])
            rows.append((line, row))
    return rows


def _check_doctor_references(tables: dict[str, _Table], problems: _Problems) -> None:
    # Checked on every doctor row, complete or not, against every code present, good row or
    # bad: a referenced row that is itself bad was reported on its own line.
    departments, fees = tables[DEPARTMENTS_FILE], tables[FEE_ITEMS_FILE]
    fee_kinds = {row["code"]: row["kind"] for _, row in _first_rows(fees)}
    for line, row in _first_rows(tables[DOCTORS_FILE]):
        department_code, service_code = row["department_code"], row["service_code"]
        if departments.usable and department_code and department_code not in departments.keys:
            problems.add(DOCTORS_FILE, line,
                         f"department_code {department_code!r} is not in {DEPARTMENTS_FILE}")
        if not fees.usable or not service_code:
            continue
        kind = fee_kinds.get(service_code)
        if service_code not in fees.keys:
            problems.add(DOCTORS_FILE, line,
                         f"service_code {service_code!r} is not in {FEE_ITEMS_FILE}")
        elif kind in FEE_KINDS and kind != "registration":
            problems.add(DOCTORS_FILE, line, f"service_code {service_code!r} is a {kind} "
                                             "fee item, not a registration")


def _check_document_types(table: _Table, problems: _Problems) -> None:
    first_line: dict[str, int] = {}
    for line, row in _first_rows(table):
        hl7_type = row["hl7_type"]
        if not _HL7_ID_TYPE_RE.fullmatch(hl7_type):
            continue  # empty or malformed: reported already
        if hl7_type in first_line:
            problems.add(table.file, line,
                         f"hl7_type {hl7_type!r} is also used on line {first_line[hl7_type]}")
        else:
            first_line[hl7_type] = line
    _check_required(table, REQUIRED_DOCUMENT_TYPES, "document type", problems)


def _check_required(table: _Table, required: tuple[str, ...],
                    what: str, problems: _Problems) -> None:
    if not table.usable:
        return
    missing = [code for code in required if code not in table.keys]
    if missing:
        problems.add(table.file, 0, f"required {what}(s) missing: {', '.join(missing)}")


def _check_profile(path: Path, problems: _Problems) -> None:
    try:
        load_queue_statuses(load_profile(path), path.parent / "queue.toml")
    except OSError as exc:
        problems.add(path.name, 0, f"cannot read the file ({exc.strerror or exc})")
    except (ValueError, TypeError) as exc:  # ProfileError, UnicodeDecodeError, a bad value
        message = str(exc)
        # ProfileError starts with the file's path: the problem already names the file.
        prefix = f"{path}: "
        if message.startswith(prefix):
            message = message[len(prefix):]
        if isinstance(exc, UnicodeDecodeError):
            message = "not UTF-8; save the file as UTF-8"
        problems.add(path.name, 0, message or type(exc).__name__)
