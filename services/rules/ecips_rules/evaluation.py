"""Deciding, for one enterprise, which rules apply today: a pure function of
the catalogue, the enterprise's snapshot, what was decided before and the
date. The consumer, the scheduler, dry runs and enactments all call it, so a
dry run predicts an enactment exactly.

Per rule:

* the condition is evaluated only when a field it reads changed since the
  last evaluation under this catalogue (else the previous answer stands);
* the rule's first day is ``since_from`` (or the day the condition was first
  seen to hold), moved on by ``delay`` — a first day still ahead is noticed
  on that day (``next_evaluation_on``);
* ``while_condition`` rules apply while the condition holds; ``fixed`` rules
  apply for their period from the first day, once per onset, whatever the
  condition does afterwards, and end on time;
* a rule whose version changed is lifted and issued again with the same first
  day; a rule no longer in the catalogue is lifted.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ecips_rules.catalogue import Catalogue, CompiledRule, Rule
from ecips_rules.expressions import ExpressionError
from ecips_rules.variables import (
    date_field,
    enterprise_variables,
    parse_date,
    split_path,
    time_derived_change_on,
    value_at,
)

logger = logging.getLogger("ecips.rules")

# Why a punishment ended (PunishmentLifted.reason).
CONDITION_ENDED = "condition_no_longer_holds"
DURATION_ELAPSED = "duration_elapsed"
RULE_REVISED = "rule_revised"
RULE_WITHDRAWN = "rule_withdrawn"
NEW_ONSET = "superseded_by_new_onset"


@dataclass(frozen=True, slots=True)
class HeldPunishment:
    """An active punishment as the decision needs it."""

    punishment_id: uuid.UUID
    rule_id: str
    rule_version: int
    kind: str
    measures: list[dict[str, Any]]
    since: date
    until: date | None


@dataclass(frozen=True, slots=True)
class Trigger:
    rule: Rule
    since: date
    until: date | None


@dataclass(frozen=True, slots=True)
class Lift:
    punishment: HeldPunishment
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    triggers: tuple[Trigger, ...]
    lifts: tuple[Lift, ...]
    # Per rule: {"held_since": day the condition was first seen to hold,
    # "served": first day of the last onset of a fixed rule}.
    rule_state: dict[str, dict[str, str]]
    next_evaluation_on: date | None
    evaluated: int
    skipped: int
    failed: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        return bool(self.triggers or self.lifts)


@dataclass(slots=True)
class _Candidates:
    days: list[date] = field(default_factory=list)

    def add(self, day: date | None, today: date) -> None:
        if day is not None and day > today:
            self.days.append(day)

    def first(self) -> date | None:
        return min(self.days) if self.days else None


def changed_inputs(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], inputs: frozenset[str]
) -> bool:
    if old is None:
        return True
    for path in inputs:
        parts = split_path(path) if path else ()
        if value_at(old, parts) != value_at(new, parts):
            return True
    return False


def decide(
    catalogue: Catalogue,
    *,
    state: Mapping[str, Any],
    today: date,
    active: Sequence[HeldPunishment],
    rule_state: Mapping[str, Mapping[str, str]] | None = None,
    previous_state: Mapping[str, Any] | None = None,
    previous_on: date | None = None,
    previous_catalogue: int | None = None,
) -> Decision:
    """What applies to this enterprise today.

    ``previous_state`` and ``previous_on`` describe the last evaluation (under
    catalogue number ``previous_catalogue``); without them every rule is
    evaluated.
    """
    rule_state = rule_state or {}
    variables = enterprise_variables(state, today)
    previous: dict[str, Any] | None = None
    if (
        previous_state is not None
        and previous_on is not None
        and previous_catalogue == catalogue.number
    ):
        previous = enterprise_variables(previous_state, previous_on)
    answers: dict[str, bool | ExpressionError] | None = None
    remaining = {p.rule_id: p for p in active}
    triggers: list[Trigger] = []
    lifts: list[Lift] = []
    new_state: dict[str, dict[str, str]] = {}
    candidates = _Candidates()
    failed: list[str] = []
    evaluated = skipped = 0

    for rule_id, compiled in catalogue.rules.items():
        before = rule_state.get(rule_id, {})
        current = remaining.pop(rule_id, None)
        if previous is not None and not changed_inputs(previous, variables, compiled.inputs):
            holds = "held_since" in before
            skipped += 1
        else:
            if answers is None:
                answers = catalogue.answers(variables)
            answer = answers[rule_id]
            if isinstance(answer, ExpressionError):
                # Keep whatever was decided before rather than lift or trigger on an error.
                logger.error(
                    "rule could not be evaluated",
                    extra={"rule_id": rule_id, "uscc": state.get("uscc"), "error": str(answer)},
                )
                failed.append(rule_id)
                if before:
                    new_state[rule_id] = dict(before)
                if current is not None and current.until is not None:
                    candidates.add(current.until + timedelta(days=1), today)
                continue
            holds = answer
            evaluated += 1
        after = _step(
            compiled, holds, before, current, variables, today, triggers, lifts, candidates
        )
        if after:
            new_state[rule_id] = after

    for orphan in remaining.values():
        lifts.append(Lift(orphan, RULE_WITHDRAWN))
    if catalogue.time_derived:
        candidates.add(time_derived_change_on(state, today), today)
    return Decision(
        tuple(triggers),
        tuple(lifts),
        new_state,
        candidates.first(),
        evaluated,
        skipped,
        tuple(failed),
    )


def _step(
    compiled: CompiledRule,
    holds: bool,
    before: Mapping[str, str],
    current: HeldPunishment | None,
    variables: Mapping[str, Any],
    today: date,
    triggers: list[Trigger],
    lifts: list[Lift],
    candidates: _Candidates,
) -> dict[str, str]:
    """One rule for one enterprise; returns the rule's new bookkeeping."""
    rule = compiled.rule
    held_since = parse_date(before.get("held_since")) if holds else None
    if holds and held_since is None:
        held_since = today
    served = parse_date(before.get("served"))
    start: date | None = None
    if holds:
        assert held_since is not None
        anchor = date_field(variables, rule.since_from) if rule.since_from else None
        anchor = anchor or held_since
        if rule.delay is not None:
            start = rule.delay.after(anchor) + timedelta(days=1)
        else:
            start = min(anchor, today)  # a first day ahead of today is a data error
    in_effect = start is not None and start <= today
    if start is not None and not in_effect:
        candidates.add(start, today)

    if rule.duration.type == "while_condition":
        if in_effect and current is None:
            assert start is not None
            triggers.append(Trigger(rule, start, None))
        elif not in_effect and current is not None:
            lifts.append(Lift(current, CONDITION_ENDED))
        elif current is not None and current.rule_version != rule.version:
            lifts.append(Lift(current, RULE_REVISED))
            triggers.append(Trigger(rule, current.since, None))
    else:
        if current is not None and current.until is not None and current.until < today:
            lifts.append(Lift(current, DURATION_ELAPSED))
            current = None
        running: tuple[date, date | None] | None = None  # (since, until) of a (re)issue
        if current is not None and current.rule_version != rule.version:
            lifts.append(Lift(current, RULE_REVISED))
            until = rule.duration.last_day(current.since)
            if until is not None and until >= today:
                running = (current.since, until)
            served = served or current.since
            current = None
        if in_effect and start != served:
            assert start is not None
            running_since = running[0] if running else current.since if current else None
            if running_since is None or (rule.since_from and start > running_since):
                if current is not None:
                    lifts.append(Lift(current, NEW_ONSET))
                    current = None
                until = rule.duration.last_day(start)
                # An onset whose period ran out before we saw it is not applied.
                running = (start, until) if until is not None and until >= today else None
            # else: absorbed by the period already running
            served = start
        if running is not None:
            triggers.append(Trigger(rule, running[0], running[1]))
            candidates.add(running[1] + timedelta(days=1) if running[1] else None, today)
        if current is not None and current.until is not None:
            candidates.add(current.until + timedelta(days=1), today)

    out: dict[str, str] = {}
    if held_since is not None:
        out["held_since"] = held_since.isoformat()
    if served is not None and rule.duration.type == "fixed":
        out["served"] = served.isoformat()
    return out
