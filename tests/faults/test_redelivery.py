"""Duplicate and reordered delivery of every event type leaves the same final state.

What delivery looks like to a consumer, and so what each must tolerate:

* The broker keeps one stream's order: the events of one topic and partition key
  (producers key by USCC; a record filed only by its old registration number is keyed
  by that number) arrive in the order they were published.
* Nothing else is ordered. A service that reads two topics (publicity and coordination
  read ``ledger`` and ``punishments``) sees them interleaved any way; so are the streams
  of different keys in one topic.
* Delivery is at least once. A consumer commits its offsets after the transactions
  they cover, so a crash (or a rebalance) makes the broker deliver again everything
  after the last commit: events already applied come again, after newer ones. The
  change-feed follower may apply an event the broker delivers as well.
* When the broker loses messages (the embedded one keeps them in memory) the follower
  applies them after a grace period, possibly after newer events of the same stream.

The fault-injecting consumer (``FaultyConsumer``) produces exactly these: random
interleaving of streams, batches in one transaction or one by one, crashes inside a
transaction followed by a replay from the last committed offsets, follower repeats;
every event arrives one to three times. Each consumer, fed that way on a fresh
database, must end where the same history applied once, in order, ends: every table
but the bookkeeping (timestamps and the ids it draws itself aside), the same newest
version of everything it publishes and the same other events, every event in the inbox
once, nothing dead-lettered.

Events lost by the broker and applied late are a further fault: the ledger and
publicity keep the newest version of everything and must end in the same state even
then (``test_late_first_delivery``). Rules and coordination act on the enterprise
snapshots they see; a snapshot applied after a newer one is ignored, so what they did
in between (a punishment triggered and lifted again, a task for a scope that changed
again) may differ; their current view must still be the same.

The history is made by the real producers: records submitted through ingest's own
service, applied in order by the ledger's consumer, whose outbox feeds the rules
service, whose outbox (with the ledger's) feeds publicity and coordination.
"""

from __future__ import annotations

import importlib
import json
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from redelivery_support import (
    ConsumerSpec,
    Databases,
    FaultyConsumer,
    RecordsMaker,
    Run,
    Travelling,
    bookkeeping_of,
    consumer_specs,
    describe_difference,
    effects_of,
    outbox_events,
    state_of,
    submit_lives,
)

from ecips.stack import SERVICES
from ecips_common import contracts
from ecips_common.contracts import PunishmentLifted, PunishmentTriggered
from ecips_common.db import Database, create_engine
from ecips_common.events import CloudEvent, EventPayload
from ecips_ingest.models import OUTBOX as INGEST_OUTBOX

CONSUMERS = ("ledger", "rules", "publicity", "coordination")
SEEDS = (101, 202, 303, 404, 505)
# Event types a consumer's topics carry that it leaves alone, and why.
NOT_HANDLED = {
    ("rules", contracts.RecordFiled.event_type): "rules decide on enterprise snapshots only",
}
# Event types no service consumes (their topic is for systems outside the suite).
NOT_CONSUMED = {
    contracts.TaskChanged.event_type: "the coordination topic feeds department systems",
}


@dataclass
class Reference:
    """A consumer after the history applied once, in order."""

    inputs: list[Travelling]
    state: dict[str, list[str]]
    effects: dict[str, Any]


@dataclass
class World:
    specs: dict[str, ConsumerSpec]
    databases: Databases
    references: dict[str, Reference]


async def _in_order(run: Run, inputs: list[Travelling]) -> Reference:
    outcomes = [await run.processor.process(item.event) for item in inputs]
    assert set(outcomes) <= {"applied", "ignored"}, outcomes
    _, dead = await bookkeeping_of(run)
    assert not dead, f"{run.spec.service} dead-lettered {dead} applying the history in order"
    return Reference(inputs, await state_of(run), await effects_of(run))


@pytest.fixture(scope="module")
async def world(database_url: str) -> AsyncIterator[World]:
    specs = consumer_specs()
    databases = Databases(database_url)
    runs: list[Run] = []

    def run_of(service: str, url: str) -> Run:
        run = Run(specs[service], url, specs[service].handlers)
        runs.append(run)
        return run

    try:
        for spec in specs.values():
            await databases.template(spec)
        ingest = Database(
            create_engine(
                databases.url(await databases.migrated("ingest", "ecips_ingest", INGEST_OUTBOX)),
                application_name="redelivery-ingest",
                pool_size=2,
            ),
            INGEST_OUTBOX,
        )
        try:
            await submit_lives(RecordsMaker(ingest))
            records = await outbox_events(ingest, "ingest")
        finally:
            await ingest.dispose()

        references: dict[str, Reference] = {}
        ledger = run_of("ledger", await databases.fresh("ledger"))
        references["ledger"] = await _in_order(ledger, records)
        ledger_events = await outbox_events(ledger.database, "ledger")

        # Rules, in order; each punishment event placed right after the ledger event
        # whose transaction wrote it: the order the live system most likely delivers.
        rules = run_of("rules", await databases.fresh("rules"))
        causal: list[Travelling] = []
        written = 0
        for item in ledger_events:
            assert await rules.processor.process(item.event) in ("applied", "ignored")
            caused = await outbox_events(rules.database, "rules", after=written)
            written = caused[-1].event.sequence if caused else written
            causal += [item, *caused]
        references["rules"] = Reference(
            ledger_events, await state_of(rules), await effects_of(rules)
        )
        everything = [*records, *causal]
        for service in ("publicity", "coordination"):
            run = run_of(service, await databases.fresh(service))
            inputs = [t for t in everything if t.topic in specs[service].topics]
            references[service] = await _in_order(run, inputs)
        for service, reference in references.items():
            assert reference.inputs == [t for t in everything if t.topic in specs[service].topics]
        yield World(specs, databases, references)
    finally:
        for run in runs:
            await run.close()
        databases.drop_all()


def _contract_event_types() -> dict[str, str]:
    """Every event type of the contract, with its topic."""
    return {
        value.event_type: value.topic
        for value in vars(contracts).values()
        if isinstance(value, type) and issubclass(value, EventPayload) and value is not EventPayload
    }


def test_every_event_type_is_delivered_with_faults(world: World) -> None:
    """A new event type, or a new subscription, fails here until it is covered."""
    contract = _contract_event_types()
    consumed: set[str] = set()
    for service, spec in world.specs.items():
        handled = set(spec.handlers)
        assert handled <= set(contract), f"{service} handles types outside the contract"
        on_its_topics = {t for t, topic in contract.items() if topic in spec.topics}
        for event_type in on_its_topics - handled:
            assert (service, event_type) in NOT_HANDLED, (
                f"{service} subscribes to {contract[event_type]} but ignores {event_type}"
            )
        delivered = {t.event.type for t in world.references[service].inputs}
        missing = on_its_topics - delivered
        assert not missing, f"the history gives {service} no {sorted(missing)} events"
        consumed |= on_its_topics
    assert set(contract) - consumed == set(NOT_CONSUMED), "consumed types changed"
    for event_type in NOT_CONSUMED:
        assert all(contract[event_type] not in s.topics for s in world.specs.values())
    # A service consumes when its app follows upstreams; each one is fed with faults.
    for name in SERVICES:
        if hasattr(importlib.import_module(f"ecips_{name}.main"), "upstreams"):
            assert name in world.specs, f"{name} consumes events but is not fed with faults"


async def _faulted(
    world: World, service: str, seed: int, *, lose_first_deliveries: bool = False
) -> tuple[Run, Any]:
    spec = world.specs[service]
    faults = FaultyConsumer(random.Random(seed), lose_first_deliveries=lose_first_deliveries)
    run = Run(spec, await world.databases.fresh(service), faults.switch.wrap(spec.handlers))
    inputs = world.references[service].inputs
    log = await faults.deliver(run.processor, inputs)
    assert set(log.deliveries) == {t.event.id for t in inputs}, "an event was never delivered"
    assert max(log.deliveries.values()) <= 3, "an event was delivered more than three times"
    inbox, dead = await bookkeeping_of(run)
    assert not dead, f"{service} dead-lettered {dead}"
    assert set(inbox.values()) == {1} and set(inbox) == set(log.deliveries)
    return run, log


@pytest.mark.parametrize("service", CONSUMERS)
async def test_duplicated_and_reordered_delivery_ends_in_the_same_state(
    world: World, service: str
) -> None:
    reference = world.references[service]
    repeated = crashes = 0
    for seed in SEEDS:
        run, log = await _faulted(world, service, seed)
        try:
            state = await state_of(run)
            assert state == reference.state, (
                f"{service}, seed {seed}:\n{describe_difference(reference.state, state)}"
            )
            effects = await effects_of(run)
            assert effects == reference.effects, (
                f"{service}, seed {seed}:\n{describe_difference(reference.effects, effects)}"
            )
        finally:
            await run.close()
        repeated += sum(1 for count in log.deliveries.values() if count > 1)
        crashes += log.crashes
    # The faults happened: many events came more than once, the process crashed.
    print(
        f"\n{service}: {len(reference.inputs)} events, {len(SEEDS)} runs: {repeated} deliveries "
        f"repeated, {crashes} crashes"
    )
    assert repeated >= len(reference.inputs) * len(SEEDS) // 5, repeated
    assert crashes >= len(SEEDS), crashes


def current_view(service: str, state: dict[str, list[str]]) -> dict[str, list[str]]:
    """What a consumer holds now, without what it did on the way: for rules the newest
    snapshots, the punishments in force and their measures; for coordination what it
    knows of each registration. The ledger and publicity hold nothing else."""
    if service == "rules":
        active = [p for p in state["punishments"] if '"status": "active"' in p]
        return {"enterprises": state["enterprises"], "punishments": active} | {
            "active_measures": state["active_measures"]
        }
    if service == "coordination":
        # Whether double notification ran is history: a registration snapshot skipped
        # for a newer one in which the enterprise is deregistered notifies no one.
        return {"registrations": [_without(row, "notified") for row in state["registrations"]]}
    return state


def _without(row: str, *keys: str) -> str:
    values = {k: v for k, v in json.loads(row).items() if k not in keys}
    return json.dumps(values, sort_keys=True, ensure_ascii=False)


@pytest.mark.parametrize("service", CONSUMERS)
async def test_late_first_delivery(world: World, service: str) -> None:
    """Events the broker lost before delivering them, applied by the follower after
    newer ones of their stream (as well as every fault above)."""
    reference = world.references[service]
    expected = current_view(service, reference.state)
    late = 0
    for seed in SEEDS:
        run, log = await _faulted(world, service, seed, lose_first_deliveries=True)
        try:
            found = current_view(service, await state_of(run))
            assert found == expected, (
                f"{service}, seed {seed}:\n{describe_difference(expected, found)}"
            )
            if service in ("ledger", "publicity"):
                effects = await effects_of(run)
                assert effects == reference.effects, (
                    f"{service}, seed {seed}:\n{describe_difference(reference.effects, effects)}"
                )
        finally:
            await run.close()
        late += log.late_first
    print(f"\n{service}: {late} events delivered late, after newer ones of their stream")
    assert late >= len(SEEDS), late


async def test_a_revised_rule_stays_public_whichever_event_comes_first(world: World) -> None:
    """Revising a rule lifts the punishment under the old version and triggers it
    under the new one in one evaluation, at one instant, and the two events may reach
    publicity either way round (after a broker loss): the punishment stays shown."""
    spec = world.specs["publicity"]
    trigger = next(
        t
        for t in world.references["publicity"].inputs
        if t.event.type == PunishmentTriggered.event_type
    )
    old = PunishmentTriggered.from_event(trigger.event)
    instant = old.decided_at + timedelta(days=30)
    lift = PunishmentLifted(
        **old.model_dump(include={"uscc", "enterprise_name", "rule_id", "rule_version", "kind"}),
        measures=old.measures,
        reason="rule_revised",
        lifted_on=instant.date(),
        catalogue_version="2",
        decided_at=instant,
    )
    revised = old.model_copy(
        update={
            "rule_version": old.rule_version + 1,
            "catalogue_version": "2",
            "decided_at": instant,
        }
    )
    events = [
        _event(trigger.event, lift, 1),
        _event(trigger.event, revised, 2),
    ]
    for order in (events, events[::-1]):
        run = Run(spec, await world.databases.fresh("publicity"), spec.handlers)
        try:
            for event in [trigger.event, *order]:
                assert await run.processor.process(event) == "applied"
            measures = [
                json.loads(row)
                for row in (await state_of(run))["joint_measures"]
                if json.loads(row)["rule_id"] == old.rule_id
            ]
        finally:
            await run.close()
        assert [(m["active"], m["rule_version"]) for m in measures] == [
            (True, old.rule_version + 1)
        ], [e.type for e in order]


def _event(like: CloudEvent, payload: EventPayload, offset: int) -> CloudEvent:
    """An event of the rules service after ``like``, carrying ``payload``."""
    return like.model_copy(
        update={
            "id": str(uuid.uuid4()),
            "type": payload.event_type,
            "sequence": like.sequence + 1000 + offset,
            "data": payload.model_dump(mode="json"),
        }
    )
