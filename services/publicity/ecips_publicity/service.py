"""Domain logic: projecting ledger and rules events into the public read
model, withdrawing what is due, and answering the public's questions."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from ecips_common.contracts import (
    EnterpriseChanged,
    PunishmentLifted,
    PunishmentTriggered,
    RecordFiled,
)
from ecips_common.db import Database, UnitOfWork
from ecips_common.identifiers import (
    IdentifierError,
    is_valid_registration_number,
    normalize_uscc,
    validate_uscc,
)
from ecips_common.problems import FieldError, InvalidInput, NotFound, ProblemError
from ecips_publicity.catalogue import PublicationCatalogue
from ecips_publicity.directory import Directory
from ecips_publicity.masking import mask_personal_data
from ecips_publicity.models import Enterprise, JointMeasure, PublicItem
from ecips_publicity.presentation import Labels, data_date, pair_list_entries, render_fields
from ecips_publicity.repository import (
    NameSearch,
    ProjectionRepository,
    PublicQueryRepository,
    SearchCriteria,
    SearchTooBroad,
    WithdrawalRepository,
)
from ecips_publicity.schemas import (
    CatalogueOut,
    DistrictOut,
    EnterpriseProfile,
    FieldOut,
    Flags,
    FormerNameOut,
    JointMeasureOut,
    ListEntries,
    ListEntryOut,
    ListOut,
    MeasureOut,
    PublicItemList,
    PublicItemOut,
    SearchHit,
    SearchLimits,
    SearchResult,
    SectionOut,
    Statistics,
    StatusOut,
    TabOut,
)

logger = logging.getLogger("ecips.publicity")

# China keeps one time zone without daylight saving: a publicity period ends
# at midnight Beijing time wherever the server runs.
CHINA_TIME = timezone(timedelta(hours=8), "CST")
Today = Callable[[], date]

# C0 controls but tab and line breaks (whitespace, folded away), DEL and C1.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
MIN_QUERY_LENGTH = 2
MAX_QUERY_LENGTH = 100
MAX_LEGAL_REPRESENTATIVE_LENGTH = 50
MAX_PAGE_SIZE = 50
SEARCH_TIMEOUT_MS = 5000

WITHDRAWN = Counter(
    "ecips_publicity_withdrawn_total", "Items withdrawn from publication", ["reason", "by"]
)


def today_in_china() -> date:
    return datetime.now(CHINA_TIME).date()


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value.strip() or None if isinstance(value, str) else None


def _optional_uuid(data: dict[str, Any], key: str) -> uuid.UUID | None:
    value = data.get(key)
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class Projector:
    """Applies upstream events; each write keeps the newest version, so
    redelivered or late events change nothing."""

    def __init__(self, uow: UnitOfWork, catalogue: PublicationCatalogue, today: date) -> None:
        self._repo = ProjectionRepository(uow.session)
        self._catalogue = catalogue
        self._today = today

    async def enterprise_changed(
        self, event: EnterpriseChanged, status_code: str | None = None
    ) -> bool:
        return event.uscc in await self.enterprises_changed([(event, status_code)])

    async def enterprises_changed(
        self, changes: Sequence[tuple[EnterpriseChanged, str | None]]
    ) -> set[str]:
        """A run of snapshots: the newest per enterprise is written (an older or
        equal version would change nothing). Returns the USCCs stored."""
        newest: dict[str, tuple[EnterpriseChanged, str | None]] = {}
        for event, code in changes:
            held = newest.get(event.uscc)
            if held is None or event.version > held[0].version:
                newest[event.uscc] = (event, code)
        return await self._repo.upsert_enterprises(
            [self._enterprise_values(event, code) for event, code in newest.values()],
            {
                uscc: [{"name": n.name, "until": n.until} for n in event.former_names]
                for uscc, (event, _) in newest.items()
            },
        )

    def _enterprise_values(
        self, event: EnterpriseChanged, status_code: str | None
    ) -> dict[str, Any]:
        flags = event.flags
        values: dict[str, Any] = {
            "uscc": event.uscc,
            "version": event.version,
            "registered": event.registered,
            "name": event.name,
            "former_names": [n.model_dump(mode="json") for n in event.former_names],
            "former_names_text": "\n".join(n.name for n in event.former_names) or None,
            "registration_number": event.registration_number,
            "legal_representative": event.legal_representative,
            "enterprise_type": event.enterprise_type,
            "registered_capital": event.registered_capital,
            "established_on": event.established_on,
            "address": event.address,
            "business_scope": event.business_scope,
            "registration_authority": event.registration_authority,
            "division_code": event.division_code,
            "status": event.status,
            "status_code": self._catalogue.status_code(status_code, event.status),
            "flags": flags.model_dump(mode="json"),
            "abnormal_operation": flags.abnormal_operation,
            "serious_illegal": flags.serious_illegal,
            "changed_at": event.changed_at,
        }
        return values

    def _publish_until(self, event: RecordFiled) -> date | None:
        """The period's end, or the record's own earlier end (公示截止期)."""
        ends = []
        if event.publicity_period_days is not None:
            ends.append(event.occurred_on + timedelta(days=event.publicity_period_days))
        section = self._catalogue.sections_by_key.get(event.category)
        if section is not None and section.publicity_until_field:
            own = data_date(event.data, section.publicity_until_field, date.max)
            if own != date.max:
                # The data gives the last day shown; publication ends the day after.
                ends.append(own + timedelta(days=1))
        return min(ends) if ends else None

    async def record_filed(self, event: RecordFiled) -> bool:
        return event.record_id in await self.records_filed([event])

    async def records_filed(self, events: Sequence[RecordFiled]) -> set[uuid.UUID]:
        """A run of filed records: the newest version of each is written, then
        the enterprises they belong to are re-marked once. Returns the record
        ids stored."""
        newest: dict[uuid.UUID, RecordFiled] = {}
        for event in events:
            held = newest.get(event.record_id)
            if held is None or event.version > held.version:
                newest[event.record_id] = event
        stored = await self._repo.upsert_items([self._item_values(e) for e in newest.values()])
        rule = self._catalogue.credit_repair
        touched: set[str] = set()
        repairs: set[str] = set()
        for event in newest.values():
            is_repair = event.category == rule.category
            if is_repair and await self._credit_repair(event):
                stored.add(event.record_id)
            if event.record_id in stored:
                touched.add(event.uscc)
                if is_repair or event.category in rule.minimum_days:
                    repairs.add(event.uscc)
        await self._repo.refresh_items(touched, self._catalogue, self._today, repairs=repairs)
        return stored

    def _item_values(self, event: RecordFiled) -> dict[str, Any]:
        publishable = event.disclosure == "public" and event.status == "active"
        return {
            "record_id": event.record_id,
            "version": event.version,
            "revision": event.revision,
            "uscc": event.uscc,
            "category": event.category,
            "department": event.department,
            "source_id": event.source_id,
            "occurred_on": event.occurred_on,
            # Content that will never be shown is never stored.
            "data": mask_personal_data(event.data) if publishable else {},
            "disclosure": event.disclosure,
            "publish_until": self._publish_until(event),
            "status": event.status,
            "revocation_reason": event.revocation_reason,
            "filed_at": event.filed_at,
        }

    async def _credit_repair(self, event: RecordFiled) -> bool:
        """A repair ends its record's publication whatever its own disclosure class."""
        data = event.data
        return await self._repo.upsert_repair(
            {
                "record_id": event.record_id,
                "version": event.version,
                "uscc": event.uscc,
                "status": event.status,
                "target_record_id": _optional_uuid(data, "repaired_record_id"),
                "target_category": _optional_text(data, "repaired_category"),
                "target_source_id": _optional_text(data, "repaired_source_id"),
                "target_department": _optional_text(data, "repaired_department"),
                "effective_on": data_date(
                    data, "repaired_on", data_date(data, "decided_on", event.occurred_on)
                ),
            }
        )

    async def punishment_triggered(self, event: PunishmentTriggered) -> bool:
        return await self._repo.upsert_measure(
            {
                "uscc": event.uscc,
                "rule_id": event.rule_id,
                "rule_version": event.rule_version,
                "rule_title": event.rule_title,
                "kind": event.kind,
                "measures": [m.model_dump(mode="json") for m in event.measures],
                "legal_basis": event.legal_basis,
                "since": event.since,
                "until": event.until,
                "active": True,
                "decided_at": event.decided_at,
            }
        )

    async def punishment_lifted(self, event: PunishmentLifted) -> bool:
        return await self._repo.upsert_measure(
            {
                "uscc": event.uscc,
                "rule_id": event.rule_id,
                "rule_version": event.rule_version,
                "rule_title": None,
                "kind": event.kind,
                "measures": [],
                "legal_basis": None,
                "since": None,
                "until": event.lifted_on,
                "active": False,
                "decided_at": event.decided_at,
            }
        )


class Withdrawals:
    """Marks items withdrawn when their day comes, with no event needed.

    Queries check the dates themselves (the guarantee); the marks keep the
    published-items index and the counts exact.
    """

    def __init__(self, database: Database, catalogue: PublicationCatalogue, today: Today):
        self._database = database
        self._catalogue = catalogue
        self._today = today

    async def reconcile(self) -> dict[str, int]:
        return await self._sweep(full=True)

    async def withdraw_due(self) -> dict[str, int]:
        return await self._sweep(full=False)

    async def _sweep(self, *, full: bool) -> dict[str, int]:
        async with self._database.unit_of_work() as uow:
            repo = WithdrawalRepository(uow.session)
            if not await repo.try_lock():
                return {}  # another replica is sweeping
            today = self._today()
            if full:
                counts = await repo.reconcile(self._catalogue, today)
            else:
                counts = await repo.withdraw_due(self._catalogue, today)
        for reason, count in counts.items():
            WITHDRAWN.labels(reason, "reconcile" if full else "schedule").inc(count)
        if counts:
            logger.info("withdrawals applied", extra={"counts": counts, "full": full})
        return counts


def _flags(raw: dict[str, Any]) -> Flags:
    return Flags.model_validate(raw)


def parse_uscc(value: str) -> str:
    try:
        return validate_uscc(value)
    except IdentifierError as exc:
        raise InvalidInput([FieldError(field="uscc", code=exc.code, message=str(exc))]) from exc


def _invalid(field: str, code: str, message: str) -> InvalidInput:
    return InvalidInput([FieldError(field=field, code=code, message=message)])


@dataclass(frozen=True)
class SearchLimitsConfig:
    """Beyond ``result_cap`` matches a search stops ranking and counting (see
    NameSearch) and may be paged ``broad_depth`` deep."""

    result_cap: int = 1000
    broad_depth: int = 200


@dataclass(frozen=True)
class SearchRequest:
    """The raw query parameters of a search."""

    q: str | None = None
    legal_representative: str | None = None
    statuses: Sequence[str] = ()
    district: str | None = None
    listed: Sequence[str] = ()


class PublicQueries:
    """The questions the public may ask; nothing here reveals non-public data."""

    def __init__(
        self,
        session: AsyncSession,
        catalogue: PublicationCatalogue,
        *,
        today: date | None = None,
        directory: Directory | None = None,
        limits: SearchLimitsConfig | None = None,
    ) -> None:
        self._repo = PublicQueryRepository(session)
        self._catalogue = catalogue
        self._today = today or today_in_china()
        self._directory = directory or Directory()
        self._limits = limits or SearchLimitsConfig()

    # --- search ---------------------------------------------------------

    def _criteria(self, request: SearchRequest) -> SearchCriteria:
        for name, given in (
            ("q", request.q),
            ("legal_representative", request.legal_representative),
        ):
            if given is not None and _CONTROL_CHARACTERS.search(given):
                # No name holds one (and PostgreSQL cannot even compare a NUL).
                raise _invalid(name, "control_character", "the text contains control characters")
        text = " ".join((request.q or "").split())
        person = " ".join((request.legal_representative or "").split()) or None
        statuses = tuple(dict.fromkeys(request.statuses))
        listed = tuple(dict.fromkeys(request.listed))
        known_statuses = set(self._catalogue.status_names)
        for status in statuses:
            if status not in known_statuses:
                raise _invalid(
                    "status", "not_allowed", f"{status!r} is not one of {sorted(known_statuses)}"
                )
        known_lists = set(self._catalogue.lists_by_key)
        for flag in listed:
            if flag not in known_lists:
                raise _invalid(
                    "listed", "not_allowed", f"{flag!r} is not one of {sorted(known_lists)}"
                )
        district = (request.district or "").strip() or None
        if district is not None and not (len(district) == 6 and district.isdigit()):
            raise _invalid("district", "invalid_district", "a 6-digit division code")
        if person is not None and len(person) > MAX_LEGAL_REPRESENTATIVE_LENGTH:
            raise _invalid(
                "legal_representative",
                "too_long",
                f"at most {MAX_LEGAL_REPRESENTATIVE_LENGTH} characters",
            )
        if not text:
            if person is None and not listed:
                raise _invalid(
                    "q",
                    "required",
                    "give part of a name, a USCC or registration number, "
                    "a legal representative or a list",
                )
            return SearchCriteria(None, person, statuses, district, listed)
        if len(text) > MAX_QUERY_LENGTH:
            raise _invalid("q", "too_long", f"at most {MAX_QUERY_LENGTH} characters")
        if len(text) < MIN_QUERY_LENGTH:
            raise _invalid("q", "too_short", f"at least {MIN_QUERY_LENGTH} characters")
        if sum(ch.isalnum() for ch in text) < MIN_QUERY_LENGTH:
            # Punctuation alone yields no trigram: it would scan every name.
            raise _invalid(
                "q",
                "not_searchable",
                f"give at least {MIN_QUERY_LENGTH} letters, digits or Chinese characters",
            )
        return SearchCriteria(text, person, statuses, district, listed)

    async def search(self, request: SearchRequest, *, page: int, limit: int) -> SearchResult:
        criteria = self._criteria(request)
        if criteria.text is not None:
            found = await self._by_identifier(criteria.text)
            if found is not None:
                enterprise, match = found
                items = [self._hit(enterprise, None, match)] if page == 1 else []
                return SearchResult(items=items, total=1, page=page, limit=limit)
        offset = (page - 1) * limit
        try:
            result = await self._repo.search(
                NameSearch(criteria, cap=self._limits.result_cap),
                offset=offset,
                limit=limit,
                broad_depth=self._limits.broad_depth,
                timeout_ms=SEARCH_TIMEOUT_MS,
            )
        except SearchTooBroad as exc:
            raise ProblemError(
                422,
                "query_too_broad",
                "Too many matches to page this deep",
                f"more than {self._limits.result_cap} enterprises match; only the first "
                f"{exc.depth} "
                "can be paged. Give more of the name or a filter.",
                errors=[
                    FieldError(field="page", code="query_too_broad", message="narrow the search")
                ],
            ) from exc
        return SearchResult(
            items=[self._hit(row, row.matched_name, row.match) for row in result.rows],
            total=result.total,
            total_exact=result.total_exact,
            page=page,
            limit=limit,
        )

    async def _by_identifier(self, text: str) -> tuple[Enterprise, str] | None:
        """An exact USCC (any case, full-width tolerated) or old registration number."""
        normalized = normalize_uscc(text)
        if len(normalized) == 18 and normalized.isalnum():
            found = await self._repo.registered(normalized)
            return (found, "uscc") if found is not None else None
        if is_valid_registration_number(normalized):
            found = await self._repo.by_registration_number(normalized)
            return (found, "registration_number") if found is not None else None
        return None

    def _hit(self, enterprise: Any, matched_name: str | None, match: str) -> SearchHit:
        """From an Enterprise, or a search row with the same columns."""
        return SearchHit(
            uscc=enterprise.uscc,
            name=enterprise.name,
            legal_representative=enterprise.legal_representative,
            status=enterprise.status,
            status_code=enterprise.status_code,
            established_on=enterprise.established_on,
            enterprise_type=enterprise.enterprise_type,
            division_code=enterprise.division_code,
            district=self._catalogue.district_names.get(enterprise.division_code),
            flags=_flags(enterprise.flags),
            matched_name=matched_name,
            match=match,
        )

    # --- the enterprise --------------------------------------------------

    async def _registered(self, uscc: str) -> Enterprise:
        code = parse_uscc(uscc)
        enterprise = await self._repo.registered(code)
        if enterprise is None:
            raise NotFound("enterprise", f"no registered enterprise has the code {code}")
        return enterprise

    async def profile(self, uscc: str) -> EnterpriseProfile:
        enterprise = await self._registered(uscc)
        counts = await self._repo.section_counts(enterprise.uscc, self._catalogue, self._today)
        names = self._catalogue.section_names
        sections = [
            SectionOut(key=key, name=name, count=counts[key])
            for key, name in names.items()
            if counts.get(key)
        ]
        # A category the catalogue does not name yet is still shown, at the end.
        sections += [
            SectionOut(key=key, name=key, count=count)
            for key, count in sorted(counts.items())
            if key not in names
        ]
        measures = await self._repo.active_measures(enterprise.uscc, self._today)
        list_counts = {
            definition.key: len(await self._list_entries(enterprise.uscc, definition.key))
            for definition in self._catalogue.lists
        }
        tabs = [
            TabOut(
                key=tab.key,
                name=tab.name,
                count=(
                    len(measures)
                    if tab.measures
                    else list_counts[tab.list_key]
                    if tab.list_key
                    else sum(counts.get(c, 0) for c in tab.categories)
                ),
                categories=list(tab.categories),
                master=tab.master,
                measures=tab.measures,
                list_key=tab.list_key,
            )
            for tab in self._catalogue.tabs
        ]
        return EnterpriseProfile(
            uscc=enterprise.uscc,
            name=enterprise.name,
            former_names=[FormerNameOut.model_validate(n) for n in enterprise.former_names],
            registration_number=enterprise.registration_number,
            legal_representative=enterprise.legal_representative,
            enterprise_type=enterprise.enterprise_type,
            registered_capital=enterprise.registered_capital,
            established_on=enterprise.established_on,
            address=enterprise.address,
            business_scope=enterprise.business_scope,
            registration_authority=enterprise.registration_authority,
            division_code=enterprise.division_code,
            district=self._catalogue.district_names.get(enterprise.division_code),
            status=enterprise.status,
            status_code=enterprise.status_code,
            flags=_flags(enterprise.flags),
            joint_measures=[self._measure(m) for m in measures],
            sections=sections,
            tabs=tabs,
            as_of=self._today,
        )

    def _measure(self, row: JointMeasure) -> JointMeasureOut:
        departments = self._directory.departments
        return JointMeasureOut(
            rule_id=row.rule_id,
            rule_title=row.rule_title,
            kind=row.kind,
            measures=[
                MeasureOut(
                    measure=m["measure"],
                    title=m["title"],
                    department=m["department"],
                    department_name=departments.get(m["department"]),
                    legal_basis=m["legal_basis"],
                )
                for m in row.measures
            ],
            legal_basis=row.legal_basis,
            since=row.since,
            until=row.until,
        )

    def _item(self, row: PublicItem) -> PublicItemOut:
        section = self._catalogue.sections_by_key.get(row.category)
        number_field = section.number_field if section else None
        number = row.data.get(number_field) if number_field else None
        labels = Labels(self._catalogue, self._directory, row.category)
        ends = [d for d in (row.publish_until, row.repaired_on) if d is not None]
        return PublicItemOut(
            record_id=row.record_id,
            category=row.category,
            category_name=section.name if section else row.category,
            department=row.department,
            department_name=self._directory.departments.get(row.department),
            source_id=row.source_id,
            decision_number=str(number) if number not in (None, "") else row.source_id,
            decided_on=data_date(
                row.data, section.date_field if section else None, row.occurred_on
            ),
            occurred_on=row.occurred_on,
            publish_until=min(ends) if ends else None,
            revision=row.revision,
            data=row.data,
            fields=[
                FieldOut(key=f.key, label=f.label, value=f.value)
                for f in render_fields(row.data, labels)
            ],
        )

    async def records(
        self, uscc: str, category: str | None, *, page: int, limit: int
    ) -> PublicItemList:
        if not category:
            raise _invalid("category", "required", "name a category key")
        if category not in self._catalogue.section_names:
            raise _invalid("category", "unknown_category", f"{category!r} is not a record category")
        enterprise = await self._registered(uscc)
        rows, total = await self._repo.published_items(
            enterprise.uscc,
            [category],
            self._catalogue,
            self._today,
            limit=limit,
            offset=(page - 1) * limit,
        )
        return PublicItemList(
            items=[self._item(r) for r in rows], total=total, page=page, limit=limit
        )

    async def _list_entries(self, uscc: str, key: str) -> list[ListEntryOut]:
        definition = self._catalogue.lists_by_key[key]
        rows, _ = await self._repo.published_items(
            uscc, [definition.listing, definition.removal], self._catalogue, self._today
        )
        listings = [r for r in rows if r.category == definition.listing]
        removals = [r for r in rows if r.category == definition.removal]
        return [
            ListEntryOut(
                listing=self._item(e.listing) if e.listing is not None else None,
                removal=self._item(e.removal) if e.removal is not None else None,
            )
            for e in pair_list_entries(listings, removals)
        ]

    async def list_entries(self, uscc: str, key: str, *, page: int, limit: int) -> ListEntries:
        definition = self._catalogue.lists_by_key.get(key)
        if definition is None:
            raise NotFound("list", f"{key!r} is not a list; see GET /v1/catalogue")
        enterprise = await self._registered(uscc)
        entries = await self._list_entries(enterprise.uscc, key)
        start = (page - 1) * limit
        return ListEntries(
            key=key,
            name=definition.name,
            items=entries[start : start + limit],
            total=len(entries),
            page=page,
            limit=limit,
        )

    # --- about the service ------------------------------------------------

    def catalogue(self) -> CatalogueOut:
        cat = self._catalogue
        return CatalogueOut(
            version=cat.version,
            statuses=[StatusOut(code=s.code, name=s.name) for s in cat.statuses],
            districts=[DistrictOut(code=d.code, name=d.name) for d in cat.districts],
            lists=[ListOut(key=x.key, name=x.name) for x in cat.lists],
            sections=[SectionOut(key=s.key, name=s.name, count=0) for s in cat.sections],
            tabs=[
                TabOut(
                    key=t.key,
                    name=t.name,
                    count=0,
                    categories=list(t.categories),
                    master=t.master,
                    measures=t.measures,
                    list_key=t.list_key,
                )
                for t in cat.tabs
            ],
            search=SearchLimits(
                min_length=MIN_QUERY_LENGTH,
                max_length=MAX_QUERY_LENGTH,
                result_cap=self._limits.result_cap,
                broad_depth=self._limits.broad_depth,
                max_limit=MAX_PAGE_SIZE,
            ),
        )

    async def statistics(self) -> Statistics:
        enterprises, items = await self._repo.statistics(self._catalogue, self._today)
        return Statistics(as_of=self._today, items=items, **enterprises)


__all__ = [
    "Projector",
    "PublicQueries",
    "SearchLimitsConfig",
    "SearchRequest",
    "Today",
    "Withdrawals",
    "parse_uscc",
    "today_in_china",
]
