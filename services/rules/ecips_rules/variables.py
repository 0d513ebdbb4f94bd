"""The variables rule conditions may use, defined in one place.

A condition sees ``enterprise`` (a map built from the latest
``EnterpriseChanged`` snapshot) and ``today`` (midnight of the current day in
China time, a CEL timestamp). Dates are CEL timestamps at 00:00 UTC of that
calendar day, so ``today - enterprise.established_on >= duration("26280h")``
reads naturally. Every field is always present (``null`` when unknown) and
``record_counts`` holds every record category (0 when none), so a condition
never fails on a missing key; rules naming anything else are rejected when the
catalogue loads.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Final

from ecips_common.contracts import EnterpriseChanged

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

# A field's CEL type, or a nested map of fields. ``?`` marks "may be null".
FieldTree = dict[str, "str | FieldTree"]

ENTERPRISE_FIELDS: Final[FieldTree] = {
    "uscc": "string",
    "name": "string",
    "version": "int",
    "registered": "bool",
    "status": "string",
    "enterprise_type": "string?",
    "registered_capital": "string?",
    "established_on": "timestamp?",
    "business_scope": "string?",
    "registration_authority": "string?",
    "division_code": "string",
    "flags": {
        "abnormal_operation": "bool",
        "abnormal_operation_since": "timestamp?",
        "abnormal_operation_reason": "string?",
        "serious_illegal": "bool",
        "serious_illegal_since": "timestamp?",
        "serious_illegal_reason": "string?",
    },
    "record_counts": dict.fromkeys(RECORD_CATEGORIES, "int"),
}

VARIABLES: Final[dict[str, str | FieldTree]] = {
    "enterprise": ENTERPRISE_FIELDS,
    "today": "timestamp",
}

# Fields a rule may name as the start of its punishment (``since_from``).
DATE_FIELDS: Final[frozenset[str]] = frozenset(
    {"flags.abnormal_operation_since", "flags.serious_illegal_since", "established_on"}
)


def china_today(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(CHINA).date()


def as_timestamp(value: date | None) -> datetime | None:
    if value is None:
        return None
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def enterprise_variables(enterprise: EnterpriseChanged) -> dict[str, Any]:
    """The ``enterprise`` map for one snapshot (exactly the fields above)."""
    flags = enterprise.flags
    counts = dict.fromkeys(RECORD_CATEGORIES, 0)
    counts.update({key: value for key, value in enterprise.record_counts.items() if key in counts})
    return {
        "uscc": enterprise.uscc,
        "name": enterprise.name,
        "version": enterprise.version,
        "registered": enterprise.registered,
        "status": enterprise.status,
        "enterprise_type": enterprise.enterprise_type,
        "registered_capital": enterprise.registered_capital,
        "established_on": as_timestamp(enterprise.established_on),
        "business_scope": enterprise.business_scope,
        "registration_authority": enterprise.registration_authority,
        "division_code": enterprise.division_code,
        "flags": {
            "abnormal_operation": flags.abnormal_operation,
            "abnormal_operation_since": as_timestamp(flags.abnormal_operation_since),
            "abnormal_operation_reason": flags.abnormal_operation_reason,
            "serious_illegal": flags.serious_illegal,
            "serious_illegal_since": as_timestamp(flags.serious_illegal_since),
            "serious_illegal_reason": flags.serious_illegal_reason,
        },
        "record_counts": counts,
    }


def evaluation_context(enterprise: EnterpriseChanged, today: date) -> dict[str, Any]:
    return {"enterprise": enterprise_variables(enterprise), "today": as_timestamp(today)}


def date_field(enterprise: EnterpriseChanged, path: str) -> date | None:
    """The value of one of :data:`DATE_FIELDS`."""
    if path == "established_on":
        return enterprise.established_on
    value = getattr(enterprise.flags, path.removeprefix("flags."))
    return value if isinstance(value, date) else None


def sample_enterprises() -> list[tuple[str, EnterpriseChanged]]:
    """Snapshots every condition is tried on at load time, with a description:
    a bare enterprise whose optional fields are null, and one with every field
    and flag set (so both sides of the usual ``flag && since`` guards run)."""
    base: dict[str, Any] = {
        "uscc": "91110000600037341L",
        "version": 1,
        "registered": False,
        "name": "示例有限公司",
        "division_code": "500103",
        "status": "active",
        "changed_at": datetime(2024, 1, 1, tzinfo=UTC),
        "flags": {},
    }
    full: dict[str, Any] = {
        **base,
        "registered": True,
        "enterprise_type": "有限责任公司",
        "registered_capital": "100万元人民币",
        "established_on": date(2010, 1, 1),
        "business_scope": "一般项目：软件开发",
        "registration_authority": "重庆市渝中区市场监督管理局",
        "record_counts": {"administrative_penalty": 2},
        "flags": {
            "abnormal_operation": True,
            "abnormal_operation_since": date(2020, 1, 1),
            "abnormal_operation_reason": "未按规定报送年度报告",
            "serious_illegal": True,
            "serious_illegal_since": date(2023, 1, 1),
            "serious_illegal_reason": "列入经营异常名录届满3年",
        },
    }
    return [
        ("an enterprise whose optional fields are null", EnterpriseChanged.model_validate(base)),
        ("an enterprise with every field and flag set", EnterpriseChanged.model_validate(full)),
    ]
