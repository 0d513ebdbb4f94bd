"""The demo generator makes records that ingest accepts as they are: each one
passes the envelope validation, its category's JSON Schema and the submitter
rule of the live catalogue; and the output is deterministic by seed."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ecips.demo import DISTRICTS, DemoGenerator, generate
from ecips_common.identifiers import is_valid_registration_number, is_valid_uscc, uscc_division
from ecips_ingest.catalogue import load_catalogue
from ecips_ingest.schemas import RecordSubmission
from ecips_ingest.service import data_errors
from ecips_ingest.settings import CATALOGUE_DIR


def test_every_generated_record_is_acceptable() -> None:
    catalogue = load_catalogue(CATALOGUE_DIR)
    generator = DemoGenerator(seed=7)
    seen: Counter[str] = Counter()
    for _ in range(1500):
        enterprise = generator.enterprise()
        assert is_valid_uscc(enterprise.uscc)
        assert uscc_division(enterprise.uscc) in DISTRICTS
        if enterprise.registration_number:
            assert is_valid_registration_number(enterprise.registration_number)
        for record in generator.records(enterprise):
            submission = RecordSubmission.model_validate(record.body)
            assert catalogue.may_submit(record.department, submission.category), record
            assert data_errors(catalogue, submission.category, submission.data) == [], record.body
            seen[submission.category] += 1
    # Every category the generator knows shows up in a sample this size.
    assert len(seen) >= 15, seen
    assert seen["registration"] == 1500


def test_generation_is_deterministic(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", enterprises=300, seed=11)
    second = generate(tmp_path / "b", enterprises=300, seed=11)
    assert first == second
    for name in (p.name for p in (tmp_path / "a").iterdir()):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    registrations = [
        json.loads(line) for line in (tmp_path / "a" / "CQ-SAMR.ndjson").read_text().splitlines()
    ]
    names = [r["data"]["name"] for r in registrations if r["category"] == "registration"]
    assert len(names) == len(set(names)) == 300
