"""Each check fails on manifests broken in its way, and only its check fails."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

Manifest = dict[str, Any]
DEPLOY = Path(__file__).resolve().parent.parent


def named(objects: list[Manifest], kind: str, name: str) -> Manifest:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def pod(objects: list[Manifest], kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = named(objects, kind, name)["spec"]["template"]["spec"]
    return spec


def container(objects: list[Manifest], kind: str, name: str) -> dict[str, Any]:
    first: dict[str, Any] = pod(objects, kind, name)["containers"][0]
    return first


def drop(objects: list[Manifest], kind: str, name: str) -> None:
    objects.remove(named(objects, kind, name))


def env_var(objects: list[Manifest], name: str, value: str) -> None:
    container(objects, "Deployment", "ledger")["env"].append({"name": name, "value": value})


def block_drains(budget: Manifest) -> None:
    """minAvailable = the replicas prod runs (2): no pod may ever be evicted."""
    budget["spec"].pop("maxUnavailable")
    budget["spec"]["minAvailable"] = 2


Breakage = Callable[[list[Manifest]], None]

# (id, the checks expected to fail, how the prod overlay's objects are broken)
BREAKAGES: list[tuple[str, set[str], Breakage]] = [
    (
        "no cpu request",
        {"resources"},
        lambda o: container(o, "Deployment", "ingest")["resources"]["requests"].pop("cpu"),
    ),
    (
        "migration without memory limit",
        {"resources"},
        lambda o: container(o, "Job", "rules-migrate")["resources"].pop("limits"),
    ),
    (
        "no readiness probe",
        {"probes"},
        lambda o: container(o, "Deployment", "ledger").pop("readinessProbe"),
    ),
    (
        "no startup probe",
        {"probes"},
        lambda o: container(o, "Deployment", "publicity").pop("startupProbe"),
    ),
    (
        "pod may run as root",
        {"security-context"},
        lambda o: pod(o, "Deployment", "ingest")["securityContext"].update(runAsNonRoot=False),
    ),
    (
        "container runs as uid 0",
        {"security-context"},
        lambda o: container(o, "Deployment", "rules")["securityContext"].update(runAsUser=0),
    ),
    (
        "privilege escalation",
        {"security-context"},
        lambda o: container(o, "Deployment", "ledger")["securityContext"].update(
            allowPrivilegeEscalation=True
        ),
    ),
    (
        "writable root filesystem",
        {"security-context"},
        lambda o: container(o, "Job", "ledger-migrate")["securityContext"].update(
            readOnlyRootFilesystem=False
        ),
    ),
    (
        "capabilities kept",
        {"security-context"},
        lambda o: container(o, "Deployment", "coordination")["securityContext"].update(
            capabilities={"drop": ["NET_RAW"], "add": ["NET_ADMIN"]}
        ),
    ),
    (
        "privileged",
        {"security-context"},
        lambda o: container(o, "Deployment", "publicity")["securityContext"].update(
            privileged=True
        ),
    ),
    (
        "no seccomp profile",
        {"security-context"},
        lambda o: pod(o, "Deployment", "ingest")["securityContext"].pop("seccompProfile"),
    ),
    (
        "service account token mounted",
        {"security-context"},
        lambda o: pod(o, "Deployment", "rules").update(automountServiceAccountToken=True),
    ),
    (
        "host network",
        {"security-context"},
        lambda o: pod(o, "Deployment", "rules").update(hostNetwork=True),
    ),
    (
        "latest tag",
        {"image-tag"},
        lambda o: container(o, "Deployment", "ingest").update(
            image="registry.example/ecips:latest"
        ),
    ),
    (
        "no tag at all",
        {"image-tag"},
        lambda o: container(o, "Job", "ingest-migrate").update(image="localhost:5000/ecips"),
    ),
    (
        "no disruption budget",
        {"pod-disruption-budget"},
        lambda o: drop(o, "PodDisruptionBudget", "coordination"),
    ),
    (
        "budget that blocks drains",
        {"pod-disruption-budget"},
        lambda o: block_drains(named(o, "PodDisruptionBudget", "ledger")),
    ),
    (
        "no policy of its own",
        {"network-policy"},
        lambda o: drop(o, "NetworkPolicy", "publicity"),
    ),
    (
        "no default deny",
        {"network-policy"},
        lambda o: drop(o, "NetworkPolicy", "default-deny-ingress"),
    ),
    (
        "own policy without ingress rules",
        {"network-policy"},
        lambda o: named(o, "NetworkPolicy", "ledger")["spec"].update(policyTypes=["Egress"]),
    ),
    (
        "egress unrestricted",
        {"network-policy"},
        lambda o: named(o, "Job", "rules-migrate")["spec"]["template"]["metadata"]["labels"].update(
            {"app.kubernetes.io/component": "batch"}
        ),
    ),
    (
        "Secret with values",
        {"secrets"},
        lambda o: o.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "ecips-service-token", "namespace": "ecips"},
                "stringData": {"token": "eyJ..."},
            }
        ),
    ),
    (
        "password in an env var",
        {"secrets"},
        lambda o: env_var(o, "ECIPS_DB_PASSWORD_OVERRIDE", "hunter2"),
    ),
    (
        "password inside a URL",
        {"secrets"},
        lambda o: env_var(o, "DATABASE_URL", "postgresql+asyncpg://ledger:hunter2@db:5432/ecips"),
    ),
    (
        "token in the ConfigMap",
        {"secrets"},
        lambda o: next(c for c in o if c["kind"] == "ConfigMap")["data"].update(
            ECIPS_SERVICE_TOKEN="eyJhbGciOiJFZERTQSJ9"
        ),
    ),
    (
        "Service selects nothing",
        {"references"},
        lambda o: named(o, "Service", "rules")["spec"]["selector"].update(
            {"app.kubernetes.io/name": "rule"}
        ),
    ),
    (
        "Ingress to a missing port",
        {"references"},
        lambda o: named(o, "Ingress", "publicity")["spec"]["rules"][0]["http"]["paths"][0][
            "backend"
        ]["service"].update(port={"name": "https"}),
    ),
    (
        "replicas fought over with the HPA",
        {"references"},
        lambda o: named(o, "Deployment", "publicity")["spec"].update(replicas=3),
    ),
    (
        "undefined $(VAR)",
        {"references"},
        lambda o: env_var(o, "ECIPS_LEDGER_DATABASE_URL", "postgresql+asyncpg://$(DB_USER)@db/x"),
    ),
    (
        "missing namespace",
        {"namespace"},
        lambda o: named(o, "KafkaTopic", "ledger")["metadata"].pop("namespace"),
    ),
    (
        "unknown field",
        {"schema"},
        lambda o: pod(o, "Deployment", "ledger").update(replica=2),
    ),
    (
        "wrong type",
        {"schema"},
        lambda o: named(o, "HorizontalPodAutoscaler", "ingest")["spec"].update(maxReplicas="6"),
    ),
    (
        "CRD field out of range",
        {"schema"},
        lambda o: named(o, "KafkaTopic", "records")["spec"].update(partitions=0),
    ),
    (
        "CRD typo",
        {"schema"},
        lambda o: named(o, "Cluster", "ecips-db")["spec"].update(instance=3),
    ),
    (
        "typo inside a Kubernetes type in a CRD",
        {"schema"},
        lambda o: named(o, "KafkaNodePool", "broker")["spec"]["template"]["pod"]["affinity"][
            "podAntiAffinity"
        ].update(requiredDuringScheduling=[]),
    ),
    (
        "kind without a schema",
        {"schema"},
        lambda o: o.append(
            {
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "metadata": {"name": "w", "namespace": "ecips"},
                "spec": {},
            }
        ),
    ),
]


@pytest.mark.parametrize(
    ("expected", "breakage"),
    [pytest.param(expected, breakage, id=name) for name, expected, breakage in BREAKAGES],
)
def test_each_breakage_fails_its_check_and_only_it(
    expected: set[str],
    breakage: Breakage,
    rendered: dict[str, list[Manifest]],
    validators: list[Any],
    check: ModuleType,
) -> None:
    objects = copy.deepcopy(rendered["prod"])
    breakage(objects)
    outcomes = check.check_manifests("prod", objects, validators)
    failed = {v.policy for outcome in outcomes for v in outcome.violations}
    assert failed == expected


def test_the_broken_fixture_fails_every_check() -> None:
    """End to end through the command, as CI runs it, on a Kustomize overlay broken
    once per check (deploy/tests/fixtures/broken)."""
    broken = DEPLOY / "tests" / "fixtures" / "broken"
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "check.py"), str(broken), "--no-image"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    for name in (
        "schema",
        "namespace",
        "resources",
        "probes",
        "security-context",
        "image-tag",
        "pod-disruption-budget",
        "network-policy",
        "secrets",
        "references",
    ):
        assert f": [{name}] " in result.stderr, name
    assert "10 violation(s)" in result.stderr


def test_the_command_passes_on_the_repository() -> None:
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "check.py")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for checked in ("deploy/k8s/base", "deploy/k8s/overlays/dev", "deploy/k8s/overlays/prod"):
        assert f"\n{checked}: " in result.stdout
    assert "OK: no violations" in result.stdout


def test_the_command_says_when_it_cannot_run(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "check.py"), "--kubectl", str(tmp_path / "kubectl")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "kubectl not found" in result.stderr


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("ecips:0.1.0", "0.1.0"),
        ("registry.example/ecips:0.1.0", "0.1.0"),
        ("localhost:5000/ecips", None),
        ("localhost:5000/ecips:1", "1"),
        ("ecips", None),
        ("ecips@sha256:" + "0" * 64, "@digest"),
    ],
)
def test_image_tags_are_read_like_a_registry_reads_them(
    image: str, tag: str | None, check: ModuleType
) -> None:
    assert check.image_tag(image) == tag


@pytest.mark.parametrize(
    ("budget", "replicas", "evictable"),
    [
        ({"maxUnavailable": 1}, 1, 1),
        ({"minAvailable": 1}, 1, 0),
        ({"minAvailable": 1}, 3, 2),
        ({"minAvailable": "50%"}, 3, 1),
        ({"maxUnavailable": "25%"}, 2, 1),
    ],
)
def test_disruption_budgets_count_like_kubernetes(
    budget: dict[str, Any], replicas: int, evictable: int, check: ModuleType
) -> None:
    assert check.allowed_disruptions({"spec": budget}, replicas) == evictable
