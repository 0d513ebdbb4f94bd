"""Pure domain rules: an enterprise's master data, status and list flags,
folded from the records filed under it.

Folding from the records (instead of patching stored state event by event)
makes the result independent of the order the events arrived in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

REGISTRATION = "registration"
REGISTRATION_CHANGE = "registration_change"
DEREGISTRATION = "deregistration"

STATUS_ACTIVE = "存续"
STATUS_BY_KIND: Mapping[str, str] = {
    "deregistered": "注销",
    "revoked": "吊销",
    "moved_out": "迁出",
}
STATUS_CODES: Mapping[str, str] = {
    STATUS_ACTIVE: "active",
    "注销": "deregistered",
    "吊销": "revoked",
    "迁出": "moved_out",
}

# flag -> (listing category, removal category)
LIST_FLAGS: Mapping[str, tuple[str, str]] = {
    "abnormal_operation": ("abnormal_operation_listing", "abnormal_operation_removal"),
    "serious_illegal": ("serious_illegal_listing", "serious_illegal_removal"),
}

MASTER_CATEGORIES: frozenset[str] = frozenset(
    {REGISTRATION, REGISTRATION_CHANGE, DEREGISTRATION}
    | {category for pair in LIST_FLAGS.values() for category in pair}
)

# Fields a registration_change item may set, by its `item` key.
_CHANGEABLE = ("legal_representative", "enterprise_type", "registered_capital", "address")

_CURRENCY_WORDS: Mapping[str, str] = {
    "CNY": "元人民币",
    "USD": "美元",
    "EUR": "欧元",
    "HKD": "港元",
    "JPY": "日元",
    "GBP": "英镑",
}


class RecordLike(Protocol):
    """What the fold needs of a filed record (the ORM row satisfies it)."""

    record_id: uuid.UUID
    category: str
    status: str
    revision: int
    occurred_on: date
    accepted_at: datetime
    enterprise_name: str
    registration_number: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class ListFlag:
    listed: bool = False
    since: date | None = None
    reason: str | None = None


@dataclass(frozen=True)
class MasterData:
    """Everything an EnterpriseChanged snapshot carries except uscc, version and time."""

    registered: bool
    name: str
    former_names: tuple[tuple[str, date | None], ...] = ()
    registration_number: str | None = None
    legal_representative: str | None = None
    enterprise_type: str | None = None
    registered_capital: str | None = None
    established_on: date | None = None
    address: str | None = None
    business_scope: str | None = None
    registration_authority: str | None = None
    status: str = STATUS_ACTIVE
    status_since: date | None = None
    abnormal_operation: ListFlag = field(default_factory=ListFlag)
    serious_illegal: ListFlag = field(default_factory=ListFlag)
    record_counts: tuple[tuple[str, int], ...] = ()


def render_capital(value: Any) -> str | None:
    """Registered capital as people write it: ``500万元人民币``."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, Mapping):
        try:
            amount = Decimal(str(value.get("value")))
        except InvalidOperation:
            return None
        currency = str(value.get("currency") or "CNY")
        word = _CURRENCY_WORDS.get(currency, currency)
        in_wan = format((amount / 10000).normalize(), "f")
        return f"{in_wan}万{word}"
    return None


def data_date(data: Mapping[str, Any], key: str, fallback: date) -> date:
    raw = data.get(key)
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            return fallback
    return fallback


def _text(data: Mapping[str, Any], key: str) -> str | None:
    raw = data.get(key)
    return raw.strip() or None if isinstance(raw, str) else None


def record_order(record: RecordLike, effective: date) -> tuple[date, datetime, int, str]:
    """Total order among records: the date that matters, then when ingest accepted it."""
    return (effective, record.accepted_at, record.revision, str(record.record_id))


def fold_master_data(
    records: Sequence[RecordLike], record_counts: Mapping[str, int]
) -> MasterData | None:
    """The enterprise as its records describe it; None without any registration.

    A revoked registration still names the enterprise (its records stay filed)
    but leaves it unregistered.
    """
    registrations = [r for r in records if r.category == REGISTRATION]
    if not registrations:
        return None
    active_registrations = [r for r in registrations if r.status == "active"]
    base = max(active_registrations or registrations, key=lambda r: record_order(r, r.occurred_on))
    data = base.data
    established = data_date(data, "established_on", base.occurred_on)
    state = MasterData(
        registered=bool(active_registrations),
        name=_text(data, "name") or base.enterprise_name,
        registration_number=_text(data, "registration_number") or base.registration_number,
        legal_representative=_text(data, "legal_representative"),
        enterprise_type=_text(data, "enterprise_type"),
        registered_capital=render_capital(data.get("registered_capital")),
        established_on=established,
        address=_text(data, "address"),
        business_scope=_text(data, "business_scope"),
        registration_authority=_text(data, "registration_authority"),
        status_since=established,
        record_counts=tuple(sorted(record_counts.items())),
    )
    active = [r for r in records if r.status == "active"]
    changes = sorted(
        (r for r in active if r.category == REGISTRATION_CHANGE),
        key=lambda r: record_order(r, data_date(r.data, "changed_on", r.occurred_on)),
    )
    for change in changes:
        state = apply_change(state, change)
    deregistrations = [r for r in active if r.category == DEREGISTRATION]
    if deregistrations:
        latest = max(
            deregistrations,
            key=lambda r: record_order(r, data_date(r.data, "deregistered_on", r.occurred_on)),
        )
        kind = str(latest.data.get("kind", "deregistered"))
        state = replace(
            state,
            status=STATUS_BY_KIND.get(kind, STATUS_BY_KIND["deregistered"]),
            status_since=data_date(latest.data, "deregistered_on", latest.occurred_on),
        )
    abnormal_listing, abnormal_removal = LIST_FLAGS["abnormal_operation"]
    illegal_listing, illegal_removal = LIST_FLAGS["serious_illegal"]
    return replace(
        state,
        abnormal_operation=list_flag(active, abnormal_listing, abnormal_removal),
        serious_illegal=list_flag(active, illegal_listing, illegal_removal),
    )


def apply_change(state: MasterData, change: RecordLike) -> MasterData:
    changed_on = data_date(change.data, "changed_on", change.occurred_on)
    items = change.data.get("changes")
    updates: dict[str, Any] = {}
    authority = _text(change.data, "registration_authority")
    if authority:
        updates["registration_authority"] = authority
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        key, after = item.get("item"), item.get("after")
        if not isinstance(after, str) or not after.strip():
            continue
        after = after.strip()
        if key == "name":
            current = updates.get("name", state.name)
            if after != current:
                names = updates.get("former_names", state.former_names)
                updates["former_names"] = (*names, (current, changed_on))
                updates["name"] = after
        elif key == "business_scope":
            updates["business_scope"] = after
        elif key in _CHANGEABLE:
            updates[str(key)] = after
    return replace(state, **updates)


def list_flag(active: Iterable[RecordLike], listing: str, removal: str) -> ListFlag:
    """Listed iff the latest active listing-or-removal record is a listing."""
    relevant = [r for r in active if r.category in (listing, removal)]
    if not relevant:
        return ListFlag()
    latest = max(relevant, key=lambda r: record_order(r, r.occurred_on))
    if latest.category != listing:
        return ListFlag()
    return ListFlag(
        listed=True,
        since=data_date(latest.data, "decided_on", latest.occurred_on),
        reason=_text(latest.data, "reason"),
    )
