"""Pure domain rules: an enterprise's master data, status and list flags,
folded from the records filed under it.

Folding from the records (instead of patching stored state event by event)
makes the result independent of the order the events arrived in.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from ecips_common.contracts import EnterpriseStatusCode

# The version of the rules below: enterprises folded by an older one are
# re-derived at start (bump it whenever the fold changes what it derives).
FOLD_VERSION = 3

REGISTRATION = "registration"
REGISTRATION_CHANGE = "registration_change"
DEREGISTRATION = "deregistration"

STATUS_ACTIVE = "存续"
STATUS_BY_KIND: Mapping[str, str] = {
    "deregistered": "注销",
    "revoked": "吊销",
    "moved_out": "迁出",
}
STATUS_CODES: Mapping[str, EnterpriseStatusCode] = {
    STATUS_ACTIVE: "active",
    "注销": "deregistered",
    "吊销": "revoked",
    "迁出": "moved_out",
}


def status_code_of(status: str) -> EnterpriseStatusCode:
    return STATUS_CODES.get(status, "active")


# flag -> (listing category, removal category)
LIST_FLAGS: Mapping[str, tuple[str, str]] = {
    "abnormal_operation": ("abnormal_operation_listing", "abnormal_operation_removal"),
    "serious_illegal": ("serious_illegal_listing", "serious_illegal_removal"),
}

EQUITY_FREEZE = "judicial_assistance"
CHATTEL_MORTGAGE = "chattel_mortgage"
EQUITY_PLEDGE = "equity_pledge"
ENCUMBRANCE_CATEGORIES: frozenset[str] = frozenset({EQUITY_FREEZE, CHATTEL_MORTGAGE, EQUITY_PLEDGE})

# judicial_assistance kinds: a freeze, its continuation, its release.
FREEZE_STARTS = frozenset({"股权冻结", "续行冻结"})
FREEZE_ENDS = frozenset({"解除冻结"})
# chattel_mortgage / equity_pledge ``state`` that ends the registration.
CANCELLED_STATE = "注销"

# Court and tax records that put an enterprise on a list the joint
# punishment catalogue acts on, and the penalties counted by year.
TAX_ARREARS = "tax_arrears"
JUDGMENT = "judgment"
ADMINISTRATIVE_PENALTY = "administrative_penalty"
DISHONEST_DEBTOR_KIND = "失信被执行人"
# A judgment's ``performance`` that ends a dishonest-debtor listing.
FULLY_PERFORMED = "全部履行"

# Every list flag an EnterpriseChanged carries (with ``_since`` and ``_reason``).
LISTS: tuple[str, ...] = (
    "abnormal_operation",
    "serious_illegal",
    "major_tax_violation",
    "dishonest_judgment_debtor",
)

# The categories the derived state is folded from.
MASTER_CATEGORIES: frozenset[str] = frozenset(
    {REGISTRATION, REGISTRATION_CHANGE, DEREGISTRATION}
    | {category for pair in LIST_FLAGS.values() for category in pair}
    | ENCUMBRANCE_CATEGORIES
    | {TAX_ARREARS, JUDGMENT, ADMINISTRATIVE_PENALTY}
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
class EncumbranceItem:
    """An active freeze, mortgage or pledge (see ``ecips_common.contracts.Encumbrance``)."""

    record_id: uuid.UUID
    reference: str
    holder: str | None
    party: str | None
    amount: str | None
    since: date
    until: date | None

    def as_json(self) -> dict[str, Any]:
        return {
            "record_id": str(self.record_id),
            "reference": self.reference,
            "holder": self.holder,
            "party": self.party,
            "amount": self.amount,
            "since": self.since.isoformat(),
            "until": self.until.isoformat() if self.until else None,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> EncumbranceItem:
        return cls(
            record_id=uuid.UUID(str(raw["record_id"])),
            reference=str(raw["reference"]),
            holder=raw.get("holder"),
            party=raw.get("party"),
            amount=raw.get("amount"),
            since=date.fromisoformat(raw["since"]),
            until=date.fromisoformat(raw["until"]) if raw.get("until") else None,
        )


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
    equity_freezes: tuple[EncumbranceItem, ...] = ()
    chattel_mortgages: tuple[EncumbranceItem, ...] = ()
    equity_pledges: tuple[EncumbranceItem, ...] = ()
    record_counts: tuple[tuple[str, int], ...] = ()
    major_tax_violation: ListFlag = field(default_factory=ListFlag)
    dishonest_judgment_debtor: ListFlag = field(default_factory=ListFlag)
    penalty_counts_by_year: tuple[tuple[str, int], ...] = ()


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


def _optional_date(data: Mapping[str, Any], key: str) -> date | None:
    raw = data.get(key)
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            return None
    return None


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
        equity_freezes=active_freezes(active),
        chattel_mortgages=active_registrations_of(
            active, CHATTEL_MORTGAGE, holder="mortgagee", party=None, amount="secured_amount"
        ),
        equity_pledges=active_registrations_of(
            active, EQUITY_PLEDGE, holder="pledgee", party="pledgor", amount="amount"
        ),
        major_tax_violation=major_tax_violation(active),
        dishonest_judgment_debtor=dishonest_judgment_debtor(active),
        penalty_counts_by_year=penalty_counts_by_year(active),
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


def _chain_flag(
    chains: Mapping[Any, list[tuple[date, RecordLike]]],
    listed: Callable[[RecordLike], bool],
    reason: Callable[[RecordLike], str | None],
) -> ListFlag:
    """Per chain (the same tax, the same case), the latest record decides;
    a listed chain is listed since the first record of its trailing listed run.
    The enterprise is listed since its earliest listed chain."""
    found: list[tuple[date, str | None]] = []
    for chain in chains.values():
        ordered = sorted(chain, key=lambda item: record_order(item[1], item[0]))
        if not listed(ordered[-1][1]):
            continue
        start = len(ordered) - 1
        while start > 0 and listed(ordered[start - 1][1]):
            start -= 1
        found.append((ordered[start][0], reason(ordered[-1][1])))
    if not found:
        return ListFlag()
    since, why = min(found, key=lambda item: (item[0], item[1] or ""))
    return ListFlag(listed=True, since=since, reason=why)


def major_tax_violation(active: Iterable[RecordLike]) -> ListFlag:
    """重大税收违法失信主体: per tax authority and tax type, the latest arrears
    record (by ``as_of``) says ``major_violation``. A later record without it
    (the arrears paid, the listing ended) takes the enterprise off."""
    chains: dict[tuple[str, str], list[tuple[date, RecordLike]]] = {}
    for record in active:
        if record.category != TAX_ARREARS:
            continue
        key = (_text(record.data, "authority") or "", _text(record.data, "tax_type") or "")
        chains.setdefault(key, []).append(
            (data_date(record.data, "as_of", record.occurred_on), record)
        )

    def reason(record: RecordLike) -> str:
        parts = [_text(record.data, "authority"), _text(record.data, "tax_type")]
        number = _text(record.data, "announcement_number")
        text = "，".join(p for p in parts if p) or "重大税收违法失信"
        return f"{text}（{number}）" if number else text

    return _chain_flag(chains, lambda r: r.data.get("major_violation") is True, reason)


def dishonest_judgment_debtor(active: Iterable[RecordLike]) -> ListFlag:
    """失信被执行人: per case number, the latest court record lists the
    enterprise (kind 失信被执行人 or ``dishonest_debtor``) and the judgment is
    not fully performed."""
    chains: dict[str, list[tuple[date, RecordLike]]] = {}
    for record in active:
        if record.category != JUDGMENT:
            continue
        key = _text(record.data, "case_number") or str(record.record_id)
        chains.setdefault(key, []).append(
            (data_date(record.data, "decided_on", record.occurred_on), record)
        )

    def listed(record: RecordLike) -> bool:
        marked = (
            record.data.get("kind") == DISHONEST_DEBTOR_KIND
            or record.data.get("dishonest_debtor") is True
        )
        return marked and record.data.get("performance") != FULLY_PERFORMED

    def reason(record: RecordLike) -> str:
        parts = [_text(record.data, "court"), _text(record.data, "case_number")]
        return "，".join(p for p in parts if p) or DISHONEST_DEBTOR_KIND

    return _chain_flag(chains, listed, reason)


def penalty_counts_by_year(active: Iterable[RecordLike]) -> tuple[tuple[str, int], ...]:
    """Active administrative penalties by the year of their decision."""
    years: dict[str, int] = {}
    for record in active:
        if record.category != ADMINISTRATIVE_PENALTY:
            continue
        year = str(data_date(record.data, "decided_on", record.occurred_on).year)
        years[year] = years.get(year, 0) + 1
    return tuple(sorted(years.items()))


def active_freezes(active: Iterable[RecordLike]) -> tuple[EncumbranceItem, ...]:
    """Equity freezes in force: per court and person whose equity is frozen,
    the records in date order, where a freeze or its continuation (续行冻结)
    puts it in force and a release (解除冻结) ends it."""
    chains: dict[tuple[str, str], list[RecordLike]] = {}
    for record in active:
        if record.category != EQUITY_FREEZE:
            continue
        kind = record.data.get("kind")
        if kind not in FREEZE_STARTS and kind not in FREEZE_ENDS:
            continue  # 股东变更 and the like move equity; they do not freeze it
        key = (_text(record.data, "court") or "", _text(record.data, "subject_person") or "")
        chains.setdefault(key, []).append(record)
    found: list[EncumbranceItem] = []
    for chain in chains.values():
        chain.sort(key=lambda r: record_order(r, data_date(r.data, "from_date", r.occurred_on)))
        current: EncumbranceItem | None = None
        for record in chain:
            if record.data.get("kind") in FREEZE_ENDS:
                current = None
                continue
            started = data_date(record.data, "from_date", record.occurred_on)
            current = EncumbranceItem(
                record_id=record.record_id,
                reference=_text(record.data, "notice_number") or str(record.record_id),
                holder=_text(record.data, "court"),
                party=_text(record.data, "subject_person"),
                amount=render_capital(record.data.get("amount")),
                since=current.since if current is not None else started,
                until=_optional_date(record.data, "to_date"),
            )
        if current is not None:
            found.append(current)
    return tuple(sorted(found, key=lambda e: (e.since, e.reference, str(e.record_id))))


def active_registrations_of(
    active: Iterable[RecordLike],
    category: str,
    *,
    holder: str,
    party: str | None,
    amount: str,
) -> tuple[EncumbranceItem, ...]:
    """Mortgages or pledges in force: per registration number (登记编号), the
    latest record decides; its ``state`` 注销 ends the registration."""
    by_number: dict[str, list[RecordLike]] = {}
    for record in active:
        if record.category == category:
            number = _text(record.data, "registration_number") or str(record.record_id)
            by_number.setdefault(number, []).append(record)
    found: list[EncumbranceItem] = []
    for number, records in by_number.items():
        latest = max(records, key=lambda r: record_order(r, r.occurred_on))
        if latest.data.get("state") == CANCELLED_STATE:
            continue
        first = min(records, key=lambda r: data_date(r.data, "registered_on", r.occurred_on))
        found.append(
            EncumbranceItem(
                record_id=latest.record_id,
                reference=number,
                holder=_text(latest.data, holder),
                party=_text(latest.data, party) if party else None,
                amount=render_capital(latest.data.get(amount)),
                since=data_date(first.data, "registered_on", first.occurred_on),
                until=_optional_date(latest.data, "term_to"),
            )
        )
    return tuple(sorted(found, key=lambda e: (e.since, e.reference, str(e.record_id))))
