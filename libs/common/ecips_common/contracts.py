"""The event contract between services: topics and frozen payload models.

Producers emit these through their outbox; consumers parse ``event.data``
with them. Fields are only ever added (consumers ignore unknown fields);
a breaking change gets a new event type.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from ecips_common.events import EventPayload

RECORDS_TOPIC = "records"
LEDGER_TOPIC = "ledger"
PUNISHMENTS_TOPIC = "punishments"
COORDINATION_TOPIC = "coordination"

# Partitions per topic in the embedded runtime (keyed by USCC, so one
# enterprise's events stay in order within its partition).
TOPIC_PARTITIONS: dict[str, int] = {
    RECORDS_TOPIC: 6,
    LEDGER_TOPIC: 6,
    PUNISHMENTS_TOPIC: 3,
    COORDINATION_TOPIC: 3,
}

Disclosure = Literal["public", "authorized", "government"]
RecordStatus = Literal["active", "revoked"]


# --- ingest -> records -------------------------------------------------------


class RecordAccepted(EventPayload):
    """A department's record, new or corrected (a new revision)."""

    event_type = "ecips.record.accepted"
    topic = RECORDS_TOPIC

    record_id: UUID
    revision: int
    category: str
    department: str
    source_id: str
    uscc: str | None
    registration_number: str | None
    enterprise_name: str
    occurred_on: date
    data: dict[str, Any]
    disclosure: Disclosure
    publicity_period_days: int | None
    catalogue_version: str
    accepted_at: datetime


class RecordRevoked(EventPayload):
    """A department withdrew one of its records (撤销)."""

    event_type = "ecips.record.revoked"
    topic = RECORDS_TOPIC

    record_id: UUID
    revision: int
    category: str
    department: str
    source_id: str
    uscc: str | None
    registration_number: str | None
    reason: str
    revoked_at: datetime


# --- ledger -> ledger --------------------------------------------------------


class FormerName(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    until: date | None


class EnterpriseFlags(BaseModel):
    model_config = ConfigDict(frozen=True)

    abnormal_operation: bool = False
    abnormal_operation_since: date | None = None
    abnormal_operation_reason: str | None = None
    serious_illegal: bool = False
    serious_illegal_since: date | None = None
    serious_illegal_reason: str | None = None
    # Added fields (producers before them left them out):
    major_tax_violation: bool = Field(
        default=False, description="重大税收违法失信主体: an active tax record says so"
    )
    major_tax_violation_since: date | None = None
    major_tax_violation_reason: str | None = None
    dishonest_judgment_debtor: bool = Field(
        default=False, description="失信被执行人: an active court record lists the enterprise"
    )
    dishonest_judgment_debtor_since: date | None = None
    dishonest_judgment_debtor_reason: str | None = None


EnterpriseStatusCode = Literal["active", "revoked", "deregistered", "moved_out"]


class Encumbrance(BaseModel):
    """One active equity freeze, chattel mortgage or equity pledge on an enterprise.

    Active means not lifted, cancelled (注销) or revoked by a later record;
    ``until`` is the term the record states, which consumers judge against today.
    """

    model_config = ConfigDict(frozen=True)

    record_id: UUID
    reference: str = Field(description="协助执行通知书文号 or 登记编号")
    holder: str | None = Field(default=None, description="The court, mortgagee or pledgee")
    party: str | None = Field(default=None, description="被执行人 (freeze) or 出质人 (pledge)")
    amount: str | None = Field(default=None, description="e.g. 20万元人民币")
    since: date
    until: date | None = None


class EnterpriseChanged(EventPayload):
    """The enterprise's master data and derived state after a change.

    ``version`` grows with every change of this enterprise, so a consumer
    that receives snapshots out of order keeps the newest.
    """

    event_type = "ecips.enterprise.changed"
    topic = LEDGER_TOPIC

    uscc: str
    version: int
    registered: bool
    name: str
    former_names: list[FormerName] = Field(default_factory=list)
    registration_number: str | None = None
    legal_representative: str | None = None
    enterprise_type: str | None = None
    registered_capital: str | None = None
    established_on: date | None = None
    address: str | None = None
    business_scope: str | None = None
    registration_authority: str | None = None
    division_code: str
    status: str
    flags: EnterpriseFlags
    record_counts: dict[str, int] = Field(default_factory=dict)
    changed_at: datetime
    # Added fields (producers before them left them out):
    status_code: EnterpriseStatusCode | None = Field(
        default=None, description="``status`` as a code to switch on"
    )
    status_since: date | None = None
    equity_freezes: list[Encumbrance] = Field(default_factory=list)
    chattel_mortgages: list[Encumbrance] = Field(default_factory=list)
    equity_pledges: list[Encumbrance] = Field(default_factory=list)
    penalty_counts_by_year: dict[str, int] = Field(
        default_factory=dict,
        description="Active administrative penalties by the year they were decided",
    )


class RecordFiled(EventPayload):
    """A record as filed under its enterprise (a new revision, or its revocation).

    ``version`` grows with every change of this record in the ledger.
    """

    event_type = "ecips.record.filed"
    topic = LEDGER_TOPIC

    uscc: str
    record_id: UUID
    version: int
    revision: int
    status: RecordStatus
    category: str
    department: str
    source_id: str
    occurred_on: date
    data: dict[str, Any]
    disclosure: Disclosure
    publicity_period_days: int | None
    revocation_reason: str | None = None
    filed_at: datetime


# --- rules -> punishments ----------------------------------------------------


class MeasureRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    measure: str
    title: str
    scenarios: list[str]
    department: str
    legal_basis: str


class PunishmentTriggered(EventPayload):
    event_type = "ecips.punishment.triggered"
    topic = PUNISHMENTS_TOPIC

    uscc: str
    enterprise_name: str
    rule_id: str
    rule_version: int
    rule_title: str
    kind: Literal["punishment", "incentive"]
    measures: list[MeasureRef]
    legal_basis: str
    since: date
    until: date | None
    catalogue_version: str
    decided_at: datetime


class PunishmentLifted(EventPayload):
    event_type = "ecips.punishment.lifted"
    topic = PUNISHMENTS_TOPIC

    uscc: str
    enterprise_name: str
    rule_id: str
    rule_version: int
    kind: Literal["punishment", "incentive"]
    measures: list[MeasureRef]
    reason: str
    lifted_on: date
    catalogue_version: str
    decided_at: datetime
    # Added field (producers before it left it out):
    continued_measures: list[MeasureRef] = Field(
        default_factory=list,
        description="reason rule_revised: the measures the new version of the rule keeps "
        "in force from the same day; they are not lifted in practice",
    )


# --- coordination -> coordination -------------------------------------------


class TaskChanged(EventPayload):
    event_type = "ecips.task.changed"
    topic = COORDINATION_TOPIC

    task_id: UUID
    type: Literal["double_notification", "joint_punishment"]
    action: str
    status: Literal["open", "claimed", "done"]
    department: str
    uscc: str
    changed_at: datetime
    # Added fields (producers before them left them out):
    measure: str | None = Field(
        default=None,
        description="joint_punishment: the measure; double_notification: the approval item key",
    )
