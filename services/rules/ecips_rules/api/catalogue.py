"""Managing the catalogue (scope ``rules:admin``): versions, dry runs, enactment."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from ecips_common.app import Session, service_state
from ecips_common.auth import Principal, require_scope
from ecips_common.problems import PROBLEM_RESPONSES, InvalidInput, NotFound
from ecips_common.text import text_faults_in
from ecips_rules.management import CatalogueManager, rule_differences
from ecips_rules.models import CatalogueJob, CatalogueVersion
from ecips_rules.repository import RulesRepository
from ecips_rules.schemas import (
    JobChangeOut,
    JobChangePage,
    JobOut,
    NewCatalogueVersion,
    VersionDetail,
    VersionList,
    VersionOut,
)

# Version numbers are small positive integers; anything else is a 422, not a database error.
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]

router = APIRouter(
    prefix="/v1/catalogue", tags=["managing the catalogue"], responses=PROBLEM_RESPONSES
)

Admin = Annotated[Principal, Depends(require_scope("rules:admin"))]


async def manager(request: Request) -> CatalogueManager:
    found: CatalogueManager = service_state(request).extras["manager"]
    return found


ManagerDep = Annotated[CatalogueManager, Depends(manager)]


def who(principal: Principal) -> str:
    return f"{principal.department}/{principal.subject}"


def job_out(job: CatalogueJob) -> JobOut:
    return JobOut(
        job_id=job.job_id,
        kind=job.kind,
        catalogue_version=str(job.catalogue_number),
        status=job.status,
        as_of=job.as_of,
        requested_by=job.requested_by,
        started_at=job.started_at,
        finished_at=job.finished_at,
        evaluated=job.evaluated,
        summary=job.summary,
        dry_run_job_id=job.dry_run_job_id,
        matches_dry_run=job.matches_dry_run,
        error=job.error,
    )


async def _version_out(
    manager: CatalogueManager, version: CatalogueVersion
) -> tuple[VersionOut, dict[str, object]]:
    _, catalogue, base = await manager.version(version.number)
    out = VersionOut(
        number=version.number,
        catalogue_version=str(version.number),
        status=version.status,
        note=version.note,
        based_on=version.based_on,
        created_at=version.created_at,
        created_by=version.created_by,
        enacted_at=version.enacted_at,
        enacted_by=version.enacted_by,
        differences=rule_differences(catalogue, base),
    )
    return out, catalogue.document()


@router.get("/versions", response_model=VersionList, summary="Every catalogue version")
async def list_versions(_: Admin, session: Session, manager: ManagerDep) -> VersionList:
    repo = RulesRepository(session)
    versions = await repo.versions()
    in_force = await repo.current_catalogue()
    items = [(await _version_out(manager, v))[0] for v in versions]
    return VersionList(items=items, in_force=in_force or 0)


@router.post(
    "/versions",
    response_model=VersionDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Propose a new catalogue version (a draft)",
    description=(
        "Either a whole catalogue or changes to the one in force. The draft is validated "
        "and compiled like the shipped file; a problem is a 422 naming the rule and the field. "
        "A rule whose meaning changed gets the next version number. Nothing applies until "
        "the version is dry-run and enacted."
    ),
)
async def create_version(
    body: NewCatalogueVersion, principal: Admin, manager: ManagerDep, response: Response
) -> VersionDetail:
    # Catalogue text is free-form: what no record may hold is named by its path
    # here, rather than surfacing as an unnamed database refusal.
    if faults := text_faults_in(body.model_dump(mode="json", exclude_none=True)):
        raise InvalidInput(faults)
    version = await manager.create_version(body, who(principal))
    out, document = await _version_out(manager, version)
    response.headers["Location"] = f"/v1/catalogue/versions/{version.number}"
    return VersionDetail(**out.model_dump(), document=document, jobs=[])


@router.get("/versions/{number}", response_model=VersionDetail, summary="One catalogue version")
async def get_version(
    number: VersionNumber, _: Admin, session: Session, manager: ManagerDep
) -> VersionDetail:
    version, _catalogue, _base = await manager.version(number)
    out, document = await _version_out(manager, version)
    jobs = await RulesRepository(session).jobs_of(number)
    return VersionDetail(**out.model_dump(), document=document, jobs=[job_out(j) for j in jobs])


@router.post(
    "/versions/{number}/dry-runs",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Evaluate a version over every enterprise without applying it",
    description=(
        "Reports how many enterprises would be newly restricted or released (and incentives "
        "granted or withdrawn), with examples, and records every difference "
        "(`GET /v1/catalogue/jobs/{job_id}/changes`). Poll the job until `status` is `done`."
    ),
)
async def start_dry_run(number: VersionNumber, principal: Admin, manager: ManagerDep) -> JobOut:
    return job_out(await manager.start_dry_run(number, who(principal)))


@router.post(
    "/versions/{number}/enactment",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Put a dry-run draft in force",
    description=(
        "From this moment every evaluation uses the version; the job re-evaluates every "
        "enterprise, emits `punishment.triggered` / `punishment.lifted` for each difference "
        "and finally states whether the differences equal the dry run's (`matches_dry_run`). "
        "409 `dry_run_required` without a finished dry run, 409 `not_a_draft`, 409 "
        "`enactment_running`."
    ),
)
async def enact(number: VersionNumber, principal: Admin, manager: ManagerDep) -> JobOut:
    return job_out(await manager.start_enactment(number, who(principal)))


@router.get("/jobs/{job_id}", response_model=JobOut, summary="A dry run or an enactment")
async def get_job(job_id: uuid.UUID, _: Admin, session: Session) -> JobOut:
    job = await RulesRepository(session).job(job_id)
    if job is None:
        raise NotFound("job", f"There is no job {job_id}.")
    return job_out(job)


@router.get(
    "/jobs/{job_id}/changes",
    response_model=JobChangePage,
    summary="Every difference a job found or made",
)
async def job_changes(
    job_id: uuid.UUID,
    _: Admin,
    session: Session,
    after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> JobChangePage:
    repo = RulesRepository(session)
    if await repo.job(job_id) is None:
        raise NotFound("job", f"There is no job {job_id}.")
    rows = await repo.job_changes(job_id, after, limit)
    items = [
        JobChangeOut(
            position=r.position,
            uscc=r.uscc,
            rule_id=r.rule_id,
            rule_version=r.rule_version,
            kind=r.kind,
            action=r.action,
            reason=r.reason,
            since=r.since,
            until=r.until,
        )
        for r in rows
    ]
    return JobChangePage(items=items, next_cursor=items[-1].position if items else after)
