"""Filing records under enterprises, keeping master data and flags derived
from them, and answering (audited) reads."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from ecips_common.auth import Principal
from ecips_common.contracts import (
    Encumbrance,
    EnterpriseChanged,
    EnterpriseFlags,
    FormerName,
    RecordAccepted,
    RecordFiled,
    RecordRevoked,
)
from ecips_common.db import Database, UnitOfWork
from ecips_common.identifiers import IdentifierError, uscc_division
from ecips_ledger.master_data import (
    FOLD_VERSION,
    LISTS,
    MASTER_CATEGORIES,
    REGISTRATION,
    STATUS_ACTIVE,
    EncumbranceItem,
    ListFlag,
    MasterData,
    fold_master_data,
    status_code_of,
)
from ecips_ledger.models import AuditEntry, Enterprise, FiledRecord
from ecips_ledger.repository import LedgerRepository

logger = logging.getLogger("ecips.ledger")


def now_utc() -> datetime:
    return datetime.now(UTC)


def lock_keys(
    record_id: uuid.UUID, numbers: Iterable[str | None], usccs: Iterable[str | None]
) -> list[str]:
    """The locks one record event takes, in the one global order: the record,
    then registration numbers, then USCCs (a USCC found through a number is
    locked after it, which keeps the order)."""
    return [
        f"record:{record_id}",
        *sorted({f"number:{n}" for n in numbers if n}),
        *sorted({f"uscc:{u}" for u in usccs if u}),
    ]


def _registration_number_in(data: dict[str, Any]) -> str | None:
    value = data.get("registration_number")
    return value if isinstance(value, str) and value else None


def revision_of(event: RecordAccepted) -> dict[str, Any]:
    return {
        "record_id": event.record_id,
        "revision": event.revision,
        "uscc": event.uscc,
        "registration_number": event.registration_number,
        "enterprise_name": event.enterprise_name,
        "occurred_on": event.occurred_on,
        "data": event.data,
        "disclosure": event.disclosure,
        "publicity_period_days": event.publicity_period_days,
        "catalogue_version": event.catalogue_version,
        "accepted_at": event.accepted_at,
    }


def accepted_lock_keys(events: Sequence[RecordAccepted]) -> list[str]:
    """The locks a run of accepted records takes: every lock of every record,
    in the same global order as :func:`lock_keys` (records, numbers, USCCs)."""
    records: set[str] = set()
    numbers: set[str] = set()
    usccs: set[str] = set()
    for event in events:
        records.add(f"record:{event.record_id}")
        candidates = [event.registration_number]
        if event.category == REGISTRATION:
            candidates.append(_registration_number_in(event.data))
        numbers.update(f"number:{n}" for n in candidates if n)
        if event.uscc:
            usccs.add(f"uscc:{event.uscc}")
    return [*sorted(records), *sorted(numbers), *sorted(usccs)]


class RecordFiler:
    """Applies the records topic to the ledger (runs inside the consumer's
    unit of work, so the inbox row, the state and the events commit together).

    A run of accepted records is read and locked together (one statement per
    table), then filed one by one in delivery order against the rows in hand:
    the same state and events as filing each alone, in a few statements."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._repo = LedgerRepository(uow.session)
        # Enterprises read (and row-locked) in this unit of work; None: none yet.
        self._enterprises: dict[str, Enterprise | None] = {}
        # Enterprises created here, with every record filed under them since:
        # all they have, so they are folded without reading anything back.
        self._created: dict[str, list[FiledRecord]] = {}

    async def accept(self, event: RecordAccepted) -> None:
        await self.accept_many([event])

    async def accept_many(self, events: Sequence[RecordAccepted]) -> None:
        if not events:
            return
        await self._repo.lock(accepted_lock_keys(events))
        await self._repo.add_revisions([revision_of(e) for e in events])
        ids = list(dict.fromkeys(e.record_id for e in events))
        records = await self._repo.records_for_update(ids)
        early = await self._repo.take_early_revocations([i for i in ids if i not in records])
        usccs = {e.uscc for e in events if e.uscc} | {r.uscc for r in records.values() if r.uscc}
        await self._load_enterprises(usccs)
        for event in events:
            record = records.get(event.record_id)
            if record is None:
                record = records[event.record_id] = self._new_record(event)
                if (revocation := early.pop(event.record_id, None)) is not None:
                    record.status = "revoked"
                    record.revocation_reason, record.revoked_at = revocation
                self._repo.add_record(record)
                counted_before = False
            elif event.revision > record.revision:
                counted_before = _counted(record)
                self._replace_head(record, event)
            else:
                # An older revision arriving late: kept in the history only.
                continue
            await self._file_and_refresh(record, counted_before=counted_before)

    async def _load_enterprises(self, usccs: Collection[str]) -> None:
        wanted = [u for u in usccs if u not in self._enterprises]
        found = await self._repo.enterprises_for_update(wanted)
        for uscc in wanted:
            self._enterprises[uscc] = found.get(uscc)

    async def _enterprise(self, uscc: str) -> Enterprise | None:
        if uscc not in self._enterprises:
            await self._load_enterprises([uscc])
        return self._enterprises[uscc]

    async def revoke(self, event: RecordRevoked) -> None:
        await self._repo.lock(lock_keys(event.record_id, [event.registration_number], [event.uscc]))
        record = await self._repo.get_record(event.record_id, for_update=True)
        if record is None:
            # The revocation overtook its record: remember it for when the record comes.
            await self._repo.remember_revocation(
                {
                    "record_id": event.record_id,
                    "revision": event.revision,
                    "reason": event.reason,
                    "revoked_at": event.revoked_at,
                }
            )
            return
        if record.status == "revoked":
            return
        counted_before = _counted(record)
        record.status = "revoked"
        record.revocation_reason = event.reason
        record.revoked_at = event.revoked_at
        record.version += 1
        record.updated_at = now_utc()
        await self._file_and_refresh(record, counted_before=counted_before)

    @staticmethod
    def _new_record(event: RecordAccepted) -> FiledRecord:
        return FiledRecord(
            record_id=event.record_id,
            uscc=event.uscc,
            registration_number=event.registration_number,
            matched=False,
            category=event.category,
            department=event.department,
            source_id=event.source_id,
            enterprise_name=event.enterprise_name,
            revision=event.revision,
            status="active",
            occurred_on=event.occurred_on,
            data=event.data,
            disclosure=event.disclosure,
            publicity_period_days=event.publicity_period_days,
            catalogue_version=event.catalogue_version,
            accepted_at=event.accepted_at,
            version=1,
            updated_at=now_utc(),
            received_at=now_utc(),
        )

    @staticmethod
    def _replace_head(record: FiledRecord, event: RecordAccepted) -> None:
        record.revision = event.revision
        record.enterprise_name = event.enterprise_name
        record.registration_number = event.registration_number
        if not record.matched:
            record.uscc = event.uscc
        record.occurred_on = event.occurred_on
        record.data = event.data
        record.disclosure = event.disclosure
        record.publicity_period_days = event.publicity_period_days
        record.catalogue_version = event.catalogue_version
        record.accepted_at = event.accepted_at
        record.version += 1
        record.updated_at = now_utc()

    async def _file_and_refresh(self, record: FiledRecord, *, counted_before: bool) -> None:
        """After a record changed: file it if its enterprise is known, tell
        consumers, and bring the enterprise's derived state up to date.
        ``counted_before``: the record was in the enterprise's active counts."""
        if not record.matched:
            uscc = await self._enterprise_for(record)
            if uscc is None:
                # Waits until the registration arrives; the wait is reported.
                if record.unmatched_since is None:
                    record.unmatched_since = record.received_at or now_utc()
                return
            self._file(record, uscc)
        assert record.uscc is not None
        self._emit_filed(record)
        await self._refresh(
            record.uscc,
            # Only master-data categories can change more than the counts.
            full=record.category in MASTER_CATEGORIES,
            # Records wait for an enterprise's registration: its USCC or its old number.
            registration_changed=record.category == REGISTRATION,
            count_change=(record.category, int(_counted(record)) - int(counted_before)),
        )

    async def refold(self, uscc: str) -> None:
        """Re-derive one enterprise from all its records (after the fold rules changed)."""
        enterprise = await self._repo.get_enterprise(uscc)
        if enterprise is None:
            return
        numbers = [enterprise.registration_number] if enterprise.registration_number else []
        await self._repo.lock([*(f"number:{n}" for n in numbers), f"uscc:{uscc}"])
        await self._refresh(uscc, full=True, registration_changed=True)

    async def _enterprise_for(self, record: FiledRecord) -> str | None:
        if record.uscc is not None:
            if await self._enterprise(record.uscc) is not None:
                return record.uscc
            if record.category == REGISTRATION and record.status == "active":
                return await self._create_enterprise(record)
            return None
        if record.registration_number is None:
            return None
        uscc = await self._repo.uscc_for_number(record.registration_number)
        if uscc is not None:
            await self._repo.lock([f"uscc:{uscc}"])
        return uscc

    async def _create_enterprise(self, registration: FiledRecord) -> str | None:
        assert registration.uscc is not None
        try:
            division = uscc_division(registration.uscc)
        except IdentifierError as exc:
            logger.warning(
                "registration with an invalid USCC left unfiled",
                extra={"record_id": str(registration.record_id), "error": exc.code},
            )
            return None
        enterprise = Enterprise(
            uscc=registration.uscc,
            name=registration.enterprise_name,
            former_names=[],
            division_code=division,
            status=STATUS_ACTIVE,
            registered=False,
            record_counts={},
            version=0,
            fold_version=0,
        )
        self._repo.add_enterprise(enterprise)
        self._enterprises[registration.uscc] = enterprise
        self._created[registration.uscc] = []
        return registration.uscc

    def _file(self, record: FiledRecord, uscc: str) -> None:
        if (created := self._created.get(uscc)) is not None:
            created.append(record)
        record.uscc = uscc
        record.matched = True
        record.filed_at = record.updated_at = now_utc()
        record.version += 1

    def _emit_filed(self, record: FiledRecord) -> None:
        assert record.uscc is not None
        self._uow.emit(filed_event_of(record), subject=record.uscc)

    async def _refresh(
        self,
        uscc: str,
        *,
        full: bool,
        registration_changed: bool,
        count_change: tuple[str, int] | None = None,
    ) -> None:
        """Re-derive the enterprise from its records; file the records that
        were waiting for it; publish a snapshot if anything changed.

        ``full`` folds the master-data records again; otherwise only the
        counts change, by ``count_change`` (category, +1/0/-1) when given,
        else as counted afresh. Records wait only for an enterprise that does
        not exist yet or for an old number it did not map yet, and both come
        with a registration, so only then are waiting records looked for.
        """
        enterprise = await self._enterprise(uscc)
        if enterprise is None:
            return
        outdated = enterprise.fold_version < FOLD_VERSION
        full = full or outdated
        if full:
            derived = await self._fold(enterprise)
            if registration_changed or outdated:
                waiting = await self._repo.unmatched_records(
                    uscc,
                    derived.registration_number if derived else enterprise.registration_number,
                )
                for record in waiting:
                    self._file(record, uscc)
                    self._emit_filed(record)
                if waiting:
                    derived = await self._fold(enterprise)
        elif count_change is not None:
            derived = replace(
                stored_master_data(enterprise),
                record_counts=changed_counts(enterprise.record_counts, *count_change),
            )
        else:
            counts = await self._repo.active_counts(enterprise.uscc)
            derived = replace(
                stored_master_data(enterprise), record_counts=tuple(sorted(counts.items()))
            )
        if derived is None:
            return
        derived = await self._without_taken_number(enterprise, derived)
        if full:
            enterprise.fold_version = FOLD_VERSION
        if derived == stored_master_data(enterprise):
            return
        self._store(enterprise, derived)
        self._emit_snapshot(enterprise)

    async def _fold(self, enterprise: Enterprise) -> MasterData | None:
        created = self._created.get(enterprise.uscc)
        if created is not None:
            counts = dict(Counter(r.category for r in created if r.status == "active"))
            records: Sequence[FiledRecord] = [r for r in created if r.category in MASTER_CATEGORIES]
        else:
            counts = await self._repo.active_counts(enterprise.uscc)
            records = await self._repo.records_in_categories(enterprise.uscc, MASTER_CATEGORIES)
        return fold_master_data(records, counts)

    async def _without_taken_number(
        self, enterprise: Enterprise, derived: MasterData
    ) -> MasterData:
        """One old number maps to one enterprise: a second claim (bad source
        data) is logged and ignored rather than failing the event forever."""
        number = derived.registration_number
        if not number or number == enterprise.registration_number:
            return derived
        owner = await self._repo.uscc_for_number(number)
        if owner is None or owner == enterprise.uscc:
            return derived
        logger.warning(
            "registration number already maps to another enterprise",
            extra={"uscc": enterprise.uscc, "other": owner},
        )
        return replace(derived, registration_number=enterprise.registration_number)

    @staticmethod
    def _store(enterprise: Enterprise, derived: MasterData) -> None:
        enterprise.registration_number = derived.registration_number
        enterprise.registered = derived.registered
        enterprise.name = derived.name
        enterprise.former_names = [
            {"name": name, "until": until.isoformat() if until else None}
            for name, until in derived.former_names
        ]
        enterprise.legal_representative = derived.legal_representative
        enterprise.enterprise_type = derived.enterprise_type
        enterprise.registered_capital = derived.registered_capital
        enterprise.established_on = derived.established_on
        enterprise.address = derived.address
        enterprise.business_scope = derived.business_scope
        enterprise.registration_authority = derived.registration_authority
        enterprise.status = derived.status
        enterprise.status_since = derived.status_since
        for flag in LISTS:
            value: ListFlag = getattr(derived, flag)
            setattr(enterprise, flag, value.listed)
            setattr(enterprise, f"{flag}_since", value.since)
            setattr(enterprise, f"{flag}_reason", value.reason)
        enterprise.equity_freezes = [e.as_json() for e in derived.equity_freezes]
        enterprise.chattel_mortgages = [e.as_json() for e in derived.chattel_mortgages]
        enterprise.equity_pledges = [e.as_json() for e in derived.equity_pledges]
        enterprise.record_counts = dict(derived.record_counts)
        enterprise.penalty_counts_by_year = dict(derived.penalty_counts_by_year)
        enterprise.version += 1
        enterprise.updated_at = now_utc()

    def _emit_snapshot(self, enterprise: Enterprise) -> None:
        self._uow.emit(snapshot_of(enterprise), subject=enterprise.uscc)


def _counted(record: FiledRecord) -> bool:
    """Whether the record is in its enterprise's ``record_counts``."""
    return bool(record.matched) and record.status == "active"


def changed_counts(
    counts: dict[str, int], category: str, change: int
) -> tuple[tuple[str, int], ...]:
    """Active counts after one record of ``category`` entered (+1) or left (-1)
    them; categories with none are left out, as a fresh count leaves them."""
    changed = dict(counts)
    changed[category] = changed.get(category, 0) + change
    return tuple(sorted((k, v) for k, v in changed.items() if v > 0))


def _disclosure(value: str) -> Any:
    return value if value in ("public", "authorized", "government") else "government"


def filed_event_of(record: FiledRecord) -> RecordFiled:
    """A filed record as the ``ecips.record.filed`` event (and snapshot line) carries it."""
    assert record.uscc is not None
    return RecordFiled(
        uscc=record.uscc,
        record_id=record.record_id,
        version=record.version,
        revision=record.revision,
        status="revoked" if record.status == "revoked" else "active",
        category=record.category,
        department=record.department,
        source_id=record.source_id,
        occurred_on=record.occurred_on,
        data=record.data,
        disclosure=_disclosure(record.disclosure),
        publicity_period_days=record.publicity_period_days,
        revocation_reason=record.revocation_reason,
        filed_at=record.updated_at,
    )


def _encumbrances(raw: list[dict[str, Any]]) -> tuple[EncumbranceItem, ...]:
    return tuple(EncumbranceItem.from_json(item) for item in raw)


def stored_master_data(enterprise: Enterprise) -> MasterData:
    return MasterData(
        registered=enterprise.registered,
        name=enterprise.name,
        former_names=tuple(
            (str(f["name"]), date.fromisoformat(f["until"]) if f.get("until") else None)
            for f in enterprise.former_names
        ),
        registration_number=enterprise.registration_number,
        legal_representative=enterprise.legal_representative,
        enterprise_type=enterprise.enterprise_type,
        registered_capital=enterprise.registered_capital,
        established_on=enterprise.established_on,
        address=enterprise.address,
        business_scope=enterprise.business_scope,
        registration_authority=enterprise.registration_authority,
        status=enterprise.status,
        status_since=enterprise.status_since,
        abnormal_operation=_stored_flag(enterprise, "abnormal_operation"),
        serious_illegal=_stored_flag(enterprise, "serious_illegal"),
        equity_freezes=_encumbrances(enterprise.equity_freezes),
        chattel_mortgages=_encumbrances(enterprise.chattel_mortgages),
        equity_pledges=_encumbrances(enterprise.equity_pledges),
        record_counts=tuple(sorted(enterprise.record_counts.items())),
        major_tax_violation=_stored_flag(enterprise, "major_tax_violation"),
        dishonest_judgment_debtor=_stored_flag(enterprise, "dishonest_judgment_debtor"),
        penalty_counts_by_year=tuple(sorted(enterprise.penalty_counts_by_year.items())),
    )


def _stored_flag(enterprise: Enterprise, flag: str) -> ListFlag:
    return ListFlag(
        getattr(enterprise, flag),
        getattr(enterprise, f"{flag}_since"),
        getattr(enterprise, f"{flag}_reason"),
    )


def flags_of(enterprise: Enterprise) -> EnterpriseFlags:
    fields: dict[str, Any] = {}
    for flag in LISTS:
        fields[flag] = getattr(enterprise, flag)
        fields[f"{flag}_since"] = getattr(enterprise, f"{flag}_since")
        fields[f"{flag}_reason"] = getattr(enterprise, f"{flag}_reason")
    return EnterpriseFlags(**fields)


def snapshot_of(enterprise: Enterprise) -> EnterpriseChanged:
    return EnterpriseChanged(
        uscc=enterprise.uscc,
        version=enterprise.version,
        registered=enterprise.registered,
        name=enterprise.name,
        former_names=[FormerName.model_validate(f) for f in enterprise.former_names],
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
        flags=flags_of(enterprise),
        record_counts=dict(enterprise.record_counts),
        changed_at=enterprise.updated_at,
        status_code=status_code_of(enterprise.status),
        status_since=enterprise.status_since,
        equity_freezes=[Encumbrance.model_validate(e) for e in enterprise.equity_freezes],
        chattel_mortgages=[Encumbrance.model_validate(e) for e in enterprise.chattel_mortgages],
        equity_pledges=[Encumbrance.model_validate(e) for e in enterprise.equity_pledges],
        penalty_counts_by_year=dict(enterprise.penalty_counts_by_year),
    )


class AuditLog:
    def __init__(self, uow: UnitOfWork) -> None:
        self._repo = LedgerRepository(uow.session)

    async def record_read(
        self,
        principal: Principal,
        *,
        method: str,
        path: str,
        query: str | None,
        uscc: str | None,
    ) -> None:
        await self._repo.add_audit(
            AuditEntry(
                subject=principal.subject[:200],
                department=principal.department[:40],
                method=method[:10],
                path=path[:500],
                query=query[:1000] if query else None,
                uscc=uscc[:64] if uscc else None,
                token_id=principal.token_id[:64] or None,
            )
        )

    async def record_lookup(
        self, principal: Principal, *, path: str, usccs: Sequence[str], numbers: Sequence[str]
    ) -> None:
        """A many-enterprise read leaves one entry per identifier asked, as
        that many single reads would (one statement)."""
        base = {
            "subject": principal.subject[:200],
            "department": principal.department[:40],
            "method": "POST",
            "path": path[:500],
            "token_id": principal.token_id[:64] or None,
        }
        await self._repo.add_audits(
            [{**base, "query": None, "uscc": uscc[:64]} for uscc in usccs]
            + [
                {**base, "query": f"registration_number={number}"[:1000], "uscc": None}
                for number in numbers
            ]
        )


async def refold_outdated(database: Database, *, batch: int = 100) -> int:
    """Re-derive every enterprise last folded by older rules, one transaction
    each (events are emitted for those whose state changes). Returns how many."""
    done = 0
    after = ""
    while True:
        async with database.read_only() as session:
            usccs = await LedgerRepository(session).outdated_enterprises(
                FOLD_VERSION, after=after, limit=batch
            )
        if not usccs:
            return done
        for uscc in usccs:
            try:
                async with database.unit_of_work() as uow:
                    await RecordFiler(uow).refold(uscc)
                done += 1
            except Exception:
                # Left for the next start (or its next event); the others go on.
                logger.exception("could not re-derive an enterprise", extra={"uscc": uscc})
        after = usccs[-1]
