"""The variables rule conditions may use, defined in one place.

A condition sees ``enterprise``: a map built from the newest ledger snapshot
of the enterprise (``EnterpriseChanged``). Every field is always present
(``null`` when unknown), ``record_counts`` holds every record category (0 when
none), so a condition never fails on a missing key; rules naming anything else
are rejected when the catalogue loads.

Conditions do not see the date. Time enters a rule only through what the
catalogue declares (``since_from`` plus ``delay``, and a ``fixed`` duration)
and through the *time-derived* fields below (``penalties.this_year`` and the
like), whose next change the engine can compute: so every enterprise carries
the day its answer may next change by itself (``next_evaluation_on``) and the
scheduler re-evaluates it on that day.

Fields added to the event later (``status_code``, the tax and court flags,
``penalty_counts_by_year``) are missing from snapshots an older ledger sent;
then a missing fact never punishes and never rewards (see
:func:`enterprise_variables`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

CHINA: Final = timezone(timedelta(hours=8))

# The record categories of the external contract (CONTRACT.md), the keys of
# ``enterprise.record_counts``.
RECORD_CATEGORIES: Final[tuple[str, ...]] = (
    "registration",
    "registration_change",
    "deregistration",
    "annual_report",
    "administrative_license",
    "administrative_penalty",
    "administrative_payment",
    "administrative_inspection",
    "administrative_coercion",
    "administrative_confirmation",
    "administrative_levy",
    "commendation",
    "judgment",
    "tax_arrears",
    "judicial_assistance",
    "abnormal_operation_listing",
    "abnormal_operation_removal",
    "serious_illegal_listing",
    "serious_illegal_removal",
    "chattel_mortgage",
    "equity_pledge",
    "equity_contribution",
    "consumer_complaint",
    "trademark_registration",
    "small_micro_support",
)

# The ledger's Chinese status labels (and the codes themselves) -> status code.
STATUS_CODES: Final[Mapping[str, str]] = {
    "存续": "active",
    "在业": "active",
    "注销": "deregistered",
    "吊销": "revoked",
    "迁出": "moved_out",
    "active": "active",
    "deregistered": "deregistered",
    "revoked": "revoked",
    "moved_out": "moved_out",
}

LIST_FLAGS: Final[tuple[str, ...]] = (
    "abnormal_operation",
    "serious_illegal",
    "major_tax_violation",
    "dishonest_judgment_debtor",
)

# A field's CEL type, or a nested map of fields. ``?`` marks "may be null".
FieldTree = dict[str, "str | FieldTree"]


def _flag_fields() -> FieldTree:
    fields: FieldTree = {}
    for flag in LIST_FLAGS:
        fields[flag] = "bool"
        fields[f"{flag}_since"] = "timestamp?"
        fields[f"{flag}_reason"] = "string?"
    return fields


ENTERPRISE_FIELDS: Final[FieldTree] = {
    "uscc": "string",
    "name": "string",
    "version": "int",
    "registered": "bool",
    "status": "string",
    "status_code": "string",
    "enterprise_type": "string?",
    "registered_capital": "string?",
    "established_on": "timestamp?",
    "business_scope": "string?",
    "registration_authority": "string?",
    "division_code": "string",
    "flags": _flag_fields(),
    "record_counts": dict.fromkeys(RECORD_CATEGORIES, "int"),
    # Active administrative penalties: all of them, and by calendar year of the
    # decision (China time) relative to today.
    "penalties": {
        "total": "int",
        "this_year": "int",
        "last_year": "int",
        "last_three_years": "int",
    },
}

VARIABLES: Final[dict[str, str | FieldTree]] = {"enterprise": ENTERPRISE_FIELDS}

# Fields whose value changes with the date alone (dotted, below ``enterprise``).
TIME_DERIVED: Final[frozenset[str]] = frozenset(
    {"penalties.this_year", "penalties.last_year", "penalties.last_three_years"}
)

# Fields a rule may name as the start of its punishment (``since_from``).
_FLAG_KEYS: Final = tuple((f, f"{f}_since", f"{f}_reason") for f in LIST_FLAGS)

DATE_FIELDS: Final[frozenset[str]] = frozenset(
    {f"flags.{flag}_since" for flag in LIST_FLAGS} | {"established_on"}
)

Path = tuple[str, ...]


class LedgerFlags(BaseModel):
    """The list flags as the ledger sends them (newer ones optional)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    abnormal_operation: bool = False
    abnormal_operation_since: date | None = None
    abnormal_operation_reason: str | None = None
    serious_illegal: bool = False
    serious_illegal_since: date | None = None
    serious_illegal_reason: str | None = None
    major_tax_violation: bool = False
    major_tax_violation_since: date | None = None
    major_tax_violation_reason: str | None = None
    dishonest_judgment_debtor: bool = False
    dishonest_judgment_debtor_since: date | None = None
    dishonest_judgment_debtor_reason: str | None = None


class LedgerSnapshot(BaseModel):
    """What the rules read of an ``EnterpriseChanged`` event: the contract's
    fields plus the optional ones the ledger adds over time (a tolerant
    reader: unknown fields are ignored, missing optional ones default)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    uscc: str = Field(min_length=18, max_length=18)
    version: int = Field(ge=0)
    registered: bool
    name: str
    enterprise_type: str | None = None
    registered_capital: str | None = None
    established_on: date | None = None
    business_scope: str | None = None
    registration_authority: str | None = None
    division_code: str
    status: str
    status_code: str | None = None
    flags: LedgerFlags = Field(default_factory=LedgerFlags)
    record_counts: dict[str, int] = Field(default_factory=dict)
    penalty_counts_by_year: dict[str, int] = Field(default_factory=dict)
    changed_at: datetime


def china_today(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(CHINA).date()


def as_timestamp(value: date | None) -> datetime | None:
    """A calendar day as the CEL timestamp of its midnight UTC."""
    if value is None:
        return None
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def parse_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _text(value: Any) -> str | None:
    return value if type(value) is str else None


def _count(value: Any) -> int:
    return value if type(value) is int and value > 0 else 0


def _years(state: Mapping[str, Any]) -> dict[int, int] | None:
    """Active penalties by calendar year, or None when the ledger did not say."""
    by_year = state.get("penalty_counts_by_year")
    if type(by_year) is not dict or not by_year:
        return None
    years: dict[int, int] = {}
    for key, value in by_year.items():
        if isinstance(key, str) and key.isdigit() and _count(value):
            years[int(key)] = value
    return years


def _figures(total: int, years: dict[int, int] | None, year: int) -> dict[str, int]:
    if years is None:
        return {"total": total, "this_year": 0, "last_year": 0, "last_three_years": total}
    this, last, before = years.get(year, 0), years.get(year - 1, 0), years.get(year - 2, 0)
    return {
        "total": total,
        "this_year": this,
        "last_year": last,
        "last_three_years": this + last + before,
    }


def _penalty_total(state: Mapping[str, Any]) -> int:
    counts = state.get("record_counts")
    return _count(counts.get("administrative_penalty")) if type(counts) is dict else 0


def penalty_figures(state: Mapping[str, Any], today: date) -> dict[str, int]:
    """``enterprise.penalties`` for ``today``.

    Without per-year counts from the ledger the year of a penalty is unknown:
    "this year" and "last year" then count none (no punishment on a guess) and
    "the last three years" counts all of them (no reward on a guess).
    """
    return _figures(_penalty_total(state), _years(state), today.year)


def time_derived_change_on(state: Mapping[str, Any], today: date) -> date | None:
    """The next day a time-derived field of this enterprise takes a new value
    with no new record (a New Year's Day), or None within the next years."""
    years = _years(state)
    if not years:
        return None
    total = _penalty_total(state)
    now = _figures(total, years, today.year)
    for ahead in range(1, 4):
        if _figures(total, years, today.year + ahead) != now:
            return date(today.year + ahead, 1, 1)
    return None


_NO_FLAGS: Final[Mapping[str, Any]] = {}
_DATE_CACHE: dict[str, datetime | None] = {}


def _timestamp(value: Any) -> datetime | None:
    """An ISO day (as stored) as a CEL timestamp; days repeat, so remembered."""
    if value is None:
        return None
    if isinstance(value, str):
        found = _DATE_CACHE.get(value)
        if found is None and value not in _DATE_CACHE:
            if len(_DATE_CACHE) > 100_000:
                _DATE_CACHE.clear()
            found = _DATE_CACHE[value] = as_timestamp(parse_date(value))
        return found
    return as_timestamp(parse_date(value))


def enterprise_variables(state: Mapping[str, Any], today: date) -> dict[str, Any]:
    """The ``enterprise`` map for one stored snapshot (exactly the fields of
    :data:`ENTERPRISE_FIELDS`). ``state`` is the snapshot as JSON (or the
    model dump); anything malformed reads as absent."""
    raw_flags = state.get("flags")
    flags_in: Mapping[str, Any] = raw_flags if type(raw_flags) is dict else _NO_FLAGS
    flags: dict[str, Any] = {}
    for flag, since, reason in _FLAG_KEYS:
        flags[flag] = flags_in.get(flag) is True
        flags[since] = _timestamp(flags_in.get(since))
        flags[reason] = _text(flags_in.get(reason))
    counts = dict.fromkeys(RECORD_CATEGORIES, 0)
    raw_counts = state.get("record_counts")
    if type(raw_counts) is dict:
        for key, value in raw_counts.items():
            if key in counts:
                counts[key] = _count(value)
    status = _text(state.get("status")) or ""
    status_code = _text(state.get("status_code")) or STATUS_CODES.get(status, "unknown")
    version = state.get("version")
    return {
        "uscc": _text(state.get("uscc")) or "",
        "name": _text(state.get("name")) or "",
        "version": version if type(version) is int else 0,
        "registered": state.get("registered") is True,
        "status": status,
        "status_code": status_code,
        "enterprise_type": _text(state.get("enterprise_type")),
        "registered_capital": _text(state.get("registered_capital")),
        "established_on": _timestamp(state.get("established_on")),
        "business_scope": _text(state.get("business_scope")),
        "registration_authority": _text(state.get("registration_authority")),
        "division_code": _text(state.get("division_code")) or "",
        "flags": flags,
        "record_counts": counts,
        "penalties": _figures(counts["administrative_penalty"], _years(state), today.year),
    }


def date_field(variables: Mapping[str, Any], path: str) -> date | None:
    """The value of one of :data:`DATE_FIELDS` as a calendar day."""
    value = value_at(variables, split_path(path))
    return value.date() if isinstance(value, datetime) else None


_SPLIT_PATHS: dict[str, Path] = {}


def split_path(path: str) -> Path:
    found = _SPLIT_PATHS.get(path)
    if found is None:
        found = _SPLIT_PATHS[path] = tuple(path.split("."))
    return found


def value_at(variables: Mapping[str, Any], path: Path) -> Any:
    value: Any = variables
    for part in path:
        if type(value) is not dict:
            return None
        value = value.get(part)
    return value


_WHOLE: Final = "*"

Shape = dict[str, Any]


def projection_shape(paths: Iterable[Path]) -> Shape:
    """The fields the conditions name, as a nested map (``"*"``: the whole
    value). A path that is a prefix of another takes the whole sub-map."""
    shape: Shape = {}
    for path in sorted(set(paths), key=len):
        if not path:
            return {key: _WHOLE for key in ENTERPRISE_FIELDS}
        node = shape
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if child == _WHOLE:
                break
            node = child
        else:
            node[path[-1]] = _WHOLE
    return shape


def project(variables: Mapping[str, Any], shape: Shape) -> dict[str, Any]:
    """Only the fields in ``shape``: converting a value into CEL costs more
    than evaluating a condition, so unused fields are left out."""
    out: dict[str, Any] = {}
    for key, sub in shape.items():
        value = variables.get(key)
        if sub == _WHOLE or type(value) is not dict:
            out[key] = value
        else:
            out[key] = project(value, sub)
    return out


def sample_enterprises() -> list[tuple[str, dict[str, Any]]]:
    """Snapshots every condition is tried on at load time, with a description:
    a bare enterprise whose optional fields are null, and one with every field
    and flag set (so both sides of the usual ``flag && since`` guards run)."""
    base: dict[str, Any] = {
        "uscc": "91110000600037341L",
        "version": 1,
        "registered": False,
        "name": "示例有限公司",
        "division_code": "500103",
        "status": "存续",
        "changed_at": "2024-01-01T00:00:00Z",
        "flags": {},
    }
    full: dict[str, Any] = {
        **base,
        "registered": True,
        "status_code": "active",
        "enterprise_type": "有限责任公司",
        "registered_capital": "100万元人民币",
        "established_on": "2010-01-01",
        "business_scope": "一般项目：软件开发",
        "registration_authority": "重庆市渝中区市场监督管理局",
        "record_counts": {"administrative_penalty": 2, "commendation": 1},
        "penalty_counts_by_year": {"2023": 1, "2024": 1},
        "flags": {
            **{flag: True for flag in LIST_FLAGS},
            **{f"{flag}_since": "2021-01-01" for flag in LIST_FLAGS},
            **{f"{flag}_reason": "示例原因" for flag in LIST_FLAGS},
        },
    }
    return [
        ("an enterprise whose optional fields are null", base),
        ("an enterprise with every field and flag set", full),
    ]
