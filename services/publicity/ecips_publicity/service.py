"""Domain logic: projecting ledger and rules events into the public read
model, and answering the public's questions from it."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ecips_common.contracts import (
    EnterpriseChanged,
    PunishmentLifted,
    PunishmentTriggered,
    RecordFiled,
)
from ecips_common.db import UnitOfWork
from ecips_common.identifiers import (
    IdentifierError,
    is_valid_registration_number,
    normalize_uscc,
    validate_uscc,
)
from ecips_common.problems import FieldError, InvalidInput, NotFound
from ecips_publicity.catalogue import PublicationCatalogue
from ecips_publicity.masking import mask_personal_data
from ecips_publicity.models import Enterprise, JointMeasure, PublicItem
from ecips_publicity.repository import ProjectionRepository, PublicQueryRepository
from ecips_publicity.schemas import (
    EnterpriseProfile,
    Flags,
    FormerNameOut,
    JointMeasureOut,
    MeasureOut,
    PublicItemList,
    PublicItemOut,
    SearchHit,
    SearchResult,
    SectionOut,
)

# China keeps one time zone without daylight saving: a publicity period ends
# at midnight Beijing time wherever the server runs.
CHINA_TIME = timezone(timedelta(hours=8), "CST")
MAX_QUERY_LENGTH = 100


def today_in_china() -> date:
    return datetime.now(CHINA_TIME).date()


class Projector:
    """Applies upstream events; each write keeps the newest version, so
    redelivered or late events change nothing."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._repo = ProjectionRepository(uow.session)

    async def enterprise_changed(self, event: EnterpriseChanged) -> bool:
        values: dict[str, Any] = {
            "uscc": event.uscc,
            "version": event.version,
            "registered": event.registered,
            "name": event.name,
            "former_names": [n.model_dump(mode="json") for n in event.former_names],
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
            "flags": event.flags.model_dump(mode="json"),
            "changed_at": event.changed_at,
        }
        former = [{"name": n.name, "until": n.until} for n in event.former_names]
        return await self._repo.upsert_enterprise(values, former)

    async def record_filed(self, event: RecordFiled) -> bool:
        publishable = event.disclosure == "public" and event.status == "active"
        publish_until = (
            event.occurred_on + timedelta(days=event.publicity_period_days)
            if event.publicity_period_days is not None
            else None
        )
        return await self._repo.upsert_item(
            {
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
                "publish_until": publish_until,
                "status": event.status,
                "filed_at": event.filed_at,
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


def _flags(raw: dict[str, Any]) -> Flags:
    return Flags.model_validate(raw)


def _hit(enterprise: Enterprise, matched_name: str | None) -> SearchHit:
    return SearchHit(
        uscc=enterprise.uscc,
        name=enterprise.name,
        legal_representative=enterprise.legal_representative,
        status=enterprise.status,
        established_on=enterprise.established_on,
        flags=_flags(enterprise.flags),
        matched_name=matched_name,
    )


def _measure(row: JointMeasure) -> JointMeasureOut:
    return JointMeasureOut(
        rule_id=row.rule_id,
        rule_title=row.rule_title,
        kind=row.kind,
        measures=[
            MeasureOut(
                measure=m["measure"],
                title=m["title"],
                department=m["department"],
                legal_basis=m["legal_basis"],
            )
            for m in row.measures
        ],
        legal_basis=row.legal_basis,
        since=row.since,
        until=row.until,
    )


def _item(row: PublicItem) -> PublicItemOut:
    return PublicItemOut(
        record_id=row.record_id,
        category=row.category,
        department=row.department,
        source_id=row.source_id,
        occurred_on=row.occurred_on,
        publish_until=row.publish_until,
        revision=row.revision,
        data=row.data,
    )


def parse_uscc(value: str) -> str:
    try:
        return validate_uscc(value)
    except IdentifierError as exc:
        raise InvalidInput([FieldError(field="uscc", code=exc.code, message=str(exc))]) from exc


class PublicQueries:
    """The questions the public may ask; nothing here reveals non-public data."""

    def __init__(
        self,
        session: AsyncSession,
        catalogue: PublicationCatalogue,
        today: date | None = None,
    ) -> None:
        self._repo = PublicQueryRepository(session)
        self._catalogue = catalogue
        self._today = today or today_in_china()

    async def search(self, q: str | None, *, page: int, limit: int) -> SearchResult:
        text = (q or "").strip()
        if not 1 <= len(text) <= MAX_QUERY_LENGTH:
            raise InvalidInput(
                [
                    FieldError(
                        field="q",
                        code="required" if not text else "too_long",
                        message=f"give 1 to {MAX_QUERY_LENGTH} characters to search for",
                    )
                ]
            )
        by_identifier = await self._by_identifier(text)
        if by_identifier is not None:
            items = [_hit(by_identifier, None)] if page == 1 else []
            return SearchResult(items=items, total=1, page=page, limit=limit)
        rows, total = await self._repo.search_names(text, limit=limit, offset=(page - 1) * limit)
        return SearchResult(
            items=[_hit(enterprise, matched) for enterprise, matched in rows],
            total=total,
            page=page,
            limit=limit,
        )

    async def _by_identifier(self, text: str) -> Enterprise | None:
        """An exact USCC (any case, full-width tolerated) or old registration number."""
        normalized = normalize_uscc(text)
        if len(normalized) == 18:
            return await self._repo.registered(normalized)
        if is_valid_registration_number(normalized):
            return await self._repo.by_registration_number(normalized)
        return None

    async def _registered(self, uscc: str) -> Enterprise:
        code = parse_uscc(uscc)
        enterprise = await self._repo.registered(code)
        if enterprise is None:
            raise NotFound("enterprise", f"no registered enterprise has the code {code}")
        return enterprise

    async def profile(self, uscc: str) -> EnterpriseProfile:
        enterprise = await self._registered(uscc)
        dated = self._catalogue.dated_publication
        counts = await self._repo.section_counts(enterprise.uscc, self._today, dated)
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
            status=enterprise.status,
            flags=_flags(enterprise.flags),
            joint_measures=[_measure(m) for m in measures],
            sections=sections,
        )

    async def records(
        self, uscc: str, category: str | None, *, page: int, limit: int
    ) -> PublicItemList:
        if not category:
            raise InvalidInput(
                [FieldError(field="category", code="required", message="name a category key")]
            )
        if category not in self._catalogue.section_names:
            raise InvalidInput(
                [
                    FieldError(
                        field="category",
                        code="unknown_category",
                        message=f"{category!r} is not a record category",
                    )
                ]
            )
        enterprise = await self._registered(uscc)
        rows, total = await self._repo.visible_items(
            enterprise.uscc,
            category,
            self._today,
            self._catalogue.dated_publication,
            limit=limit,
            offset=(page - 1) * limit,
        )
        return PublicItemList(items=[_item(r) for r in rows], total=total, page=page, limit=limit)


__all__ = ["Projector", "PublicQueries", "parse_uscc", "today_in_china"]
