"""How a record reads on the portal: labelled fields with values in Chinese,
and the lists (经营异常名录, 严重违法失信名单) as listing-with-removal pairs.

Pure functions over data already masked; nothing here touches the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from ecips_publicity.catalogue import PublicationCatalogue
from ecips_publicity.directory import Directory


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    value: str


class Labels:
    """Field titles of one category: ingest's when known, else the fallback."""

    def __init__(self, catalogue: PublicationCatalogue, directory: Directory, category: str):
        self._titles = directory.field_titles.get(category, {})
        self._fallback = catalogue.field_labels
        self._values = catalogue.value_labels

    def label(self, key: str) -> str:
        return self._titles.get(key) or self._fallback.get(key) or key

    def value_word(self, key: str, value: str) -> str:
        return self._values.get(key, {}).get(value, value)

    def order(self, keys: Sequence[str]) -> list[str]:
        """The schema's order first, unknown keys after in their own order."""
        known = [k for k in self._titles if k in keys]
        return known + [k for k in keys if k not in self._titles]

    def money(self, value: Mapping[str, Any]) -> str:
        amount = str(value.get("value", ""))
        currency = str(value.get("currency") or "CNY")
        try:
            number = Decimal(amount)
            shown = f"{number:,f}".rstrip("0").rstrip(".") if "." in amount else f"{number:,}"
        except InvalidOperation:
            shown = amount
        return f"{shown} {self.value_word('currency', currency)}"


def _is_money(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"value", "currency"}


def render_value(key: str, value: Any, labels: Labels) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if _is_money(value):
        return labels.money(value)
    if isinstance(value, Mapping):
        parts = [
            f"{labels.label(str(k))}：{render_value(str(k), v, labels)}"
            for k, v in value.items()
            if v not in (None, "")
        ]
        return "，".join(parts)
    if isinstance(value, list):
        separator = (
            "；" if any(isinstance(v, Mapping) and not _is_money(v) for v in value) else "、"
        )
        return separator.join(render_value(key, v, labels) for v in value)
    if isinstance(value, str):
        return labels.value_word(key, value)
    return str(value)


def render_fields(data: Mapping[str, Any], labels: Labels) -> list[Field]:
    fields = []
    for key in labels.order(list(data)):
        shown = render_value(key, data[key], labels)
        if shown:
            fields.append(Field(key=key, label=labels.label(key), value=shown))
    return fields


class DatedItem(Protocol):
    @property
    def occurred_on(self) -> date: ...

    @property
    def record_id(self) -> Any: ...


def data_date(data: Mapping[str, Any], key: str | None, fallback: date) -> date:
    raw = data.get(key) if key else None
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            return fallback
    return fallback


@dataclass(frozen=True)
class ListEntry:
    listing: Any | None
    removal: Any | None


def pair_list_entries(
    listings: Sequence[Any],
    removals: Sequence[Any],
    *,
    listing_number: str | None = "decision_number",
) -> list[ListEntry]:
    """One entry per listing with the removal that ended it, newest first.

    A removal that names its listing's decision (``listing_decision_number``)
    ends that one; otherwise the oldest listing still open on its date.
    A removal whose listing is not public stands alone.
    """

    def when(item: Any) -> tuple[date, str]:
        return (item.occurred_on, str(item.record_id))

    open_listings = sorted(listings, key=when)
    ended: dict[int, Any] = {}
    lonely: list[Any] = []
    for removal in sorted(removals, key=when):
        named = removal.data.get("listing_decision_number")
        candidates = [
            i
            for i, listing in enumerate(open_listings)
            if i not in ended and listing.occurred_on <= removal.occurred_on
        ]
        if named and listing_number:
            by_number = [
                i for i in candidates if open_listings[i].data.get(listing_number) == named
            ]
            candidates = by_number or candidates
        if candidates:
            ended[candidates[0]] = removal
        else:
            lonely.append(removal)
    entries = [ListEntry(listing, ended.get(i)) for i, listing in enumerate(open_listings)]
    entries += [ListEntry(None, removal) for removal in lonely]

    def newest_first(entry: ListEntry) -> tuple[date, str]:
        item = entry.listing or entry.removal
        return when(item)

    return sorted(entries, key=newest_first, reverse=True)
