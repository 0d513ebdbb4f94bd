"""The rendered overlays: well-formed, within policy, and consistent with the code they run."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest

from ecips.stack import DEFAULT_PORTS, SERVICES
from ecips_common.contracts import TOPIC_PARTITIONS
from ecips_common.settings import ServiceSettings

Manifest = dict[str, Any]
AUTOSCALED = {"ingest", "publicity"}


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind]


@pytest.mark.parametrize("overlay", ["base", "dev", "prod"])
def test_every_object_validates_and_passes_every_policy(
    overlay: str, rendered: dict[str, list[Manifest]], validators: list[Any], check: ModuleType
) -> None:
    outcomes = check.check_manifests(overlay, rendered[overlay], validators)
    violations = [str(v) for outcome in outcomes for v in outcome.violations]
    assert violations == []
    # A check that looked at nothing proves nothing.
    checked = {outcome.name: outcome.checked for outcome in outcomes}
    assert checked["schema"] == len(rendered[overlay])
    for name in ("resources", "probes", "security-context", "image-tag", "network-policy"):
        assert checked[name] >= len(SERVICES), name


@pytest.mark.parametrize("overlay", ["base", "dev", "prod"])
def test_every_service_has_its_objects(overlay: str, rendered: dict[str, list[Manifest]]) -> None:
    objects = rendered[overlay]
    for service in SERVICES:
        for kind in ("ServiceAccount", "Deployment", "Service", "PodDisruptionBudget"):
            find(objects, kind, service)
        find(objects, "NetworkPolicy", service)
        find(objects, "Job", f"{service}-migrate")
    assert {h["metadata"]["name"] for h in of_kind(objects, "HorizontalPodAutoscaler")} == (
        AUTOSCALED
    )


def settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"ecips_{service}.settings")
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, ServiceSettings)
        and value is not ServiceSettings
    ]
    assert len(classes) == 1
    return classes[0]


def container_env(container: Manifest, config_maps: dict[str, Manifest]) -> dict[str, str]:
    """The environment the kubelet would give the container, with stand-in secret values:
    a role Secret's username is the role (the service), its password <secret>-password."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = re.sub(
                r"\$\(([^)]+)\)", lambda m: env.get(m.group(1), m.group(0)), entry["value"]
            )
        else:
            secret = entry["valueFrom"]["secretKeyRef"]
            role = re.fullmatch(r"ecips-(\w+)-db", secret["name"])
            if role and secret["key"] == "username":
                env[entry["name"]] = role.group(1)
            else:
                env[entry["name"]] = f"{secret['name']}-{secret['key']}"
    return env


def load_settings(
    service: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> ServiceSettings:
    import os

    for name in list(os.environ):
        if name.startswith("ECIPS_") or name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings_class(service)()


def expected_database_url(service: str) -> str:
    return f"postgresql+asyncpg://{service}:ecips-{service}-db-password@ecips-db-rw:5432/ecips"


@pytest.mark.parametrize("service", SERVICES)
def test_the_deployment_configures_the_service_as_its_settings_read_it(
    service: str, rendered: dict[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = rendered["prod"]
    config_maps = {c["metadata"]["name"]: c for c in of_kind(objects, "ConfigMap")}
    pod = find(objects, "Deployment", service)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    port = DEFAULT_PORTS[service]
    assert container["command"][:2] == ["uvicorn", f"ecips_{service}.main:create_app"]
    assert "--factory" in container["command"] and f"--port={port}" in container["command"]
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"

    settings = load_settings(service, container_env(container, config_maps), monkeypatch)
    assert settings.database_url == expected_database_url(service)
    assert settings.kafka_bootstrap_servers == "ecips-kafka-bootstrap:9092"
    assert settings.migrate_on_start is False
    assert settings.jwt_public_key_file == Path("/etc/ecips/jwt/public.pem")
    mount = next(m for m in container["volumeMounts"] if m["name"] == "jwt-public-key")
    volume = next(v for v in pod["volumes"] if v["name"] == "jwt-public-key")
    assert Path(mount["mountPath"]) / volume["secret"]["items"][0]["path"] == (
        settings.jwt_public_key_file
    )
    if service in ("publicity", "rules"):  # public, rate limited behind the ingress
        assert settings.trust_forwarded_for is True


def test_the_workbench_page_reaches_coordination_through_the_ingresses(
    rendered: dict[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workbench is served on ingest's host and calls coordination's public host from
    staff's browsers: ingest tells the page that host, coordination lets ingest's origin in."""
    objects = rendered["prod"]
    config_maps = {c["metadata"]["name"]: c for c in of_kind(objects, "ConfigMap")}
    rules = {i["metadata"]["name"]: i["spec"]["rules"][0] for i in of_kind(objects, "Ingress")}
    assert "/workbench" in [p["path"] for p in rules["ingest"]["http"]["paths"]]

    def settings(service: str) -> Any:
        (container,) = find(objects, "Deployment", service)["spec"]["template"]["spec"][
            "containers"
        ]
        return load_settings(service, container_env(container, config_maps), monkeypatch)

    assert settings("ingest").workbench_coordination_url == (
        f"https://{rules['coordination']['host']}"
    )
    assert settings("coordination").workbench_origin_list() == [
        f"https://{rules['ingest']['host']}"
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_the_migration_job_migrates_the_service_as_its_own_role(
    service: str, rendered: dict[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = rendered["prod"]
    config_maps = {c["metadata"]["name"]: c for c in of_kind(objects, "ConfigMap")}
    job = find(objects, "Job", f"{service}-migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["ecips", "migrate", service]
    env = container_env(container, config_maps)
    assert env["DATABASE_URL"] == expected_database_url(service)  # what `ecips migrate` reads


REPO = Path(__file__).resolve().parents[2]


def peers_called(service: str) -> set[str]:
    """The peers whose URL setting (``settings.<peer>_url``) the service's code uses:
    change feeds it follows, look-ups, forwarding."""
    found: set[str] = set()
    for source in (REPO / "services" / service / f"ecips_{service}").rglob("*.py"):
        found |= set(re.findall(r"\.(\w+)_url\b", source.read_text(encoding="utf-8")))
    return found & set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_peer_calls_are_allowed_exactly_where_the_code_makes_them(
    service: str, rendered: dict[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The NetworkPolicies let a service reach each peer its code calls (egress), each
    such peer lets it in (ingress), and nothing else; the change feeds the code follows
    are among those calls; and a service that calls peers has the service token."""
    objects = rendered["prod"]
    config_maps = {c["metadata"]["name"]: c for c in of_kind(objects, "ConfigMap")}
    (container,) = find(objects, "Deployment", service)["spec"]["template"]["spec"]["containers"]
    settings = load_settings(service, container_env(container, config_maps), monkeypatch)
    main = importlib.import_module(f"ecips_{service}.main")
    upstreams = list(main.upstreams(settings)) if hasattr(main, "upstreams") else []
    feeds = {urlsplit(u.feed_url).hostname for u in upstreams}
    calls = peers_called(service)
    assert feeds <= calls

    def peers(rules: list[Manifest], side: str) -> set[str]:
        return {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for rule in rules
            for peer in rule.get(side, [])
            if "podSelector" in peer
        }

    own = find(objects, "NetworkPolicy", service)["spec"]
    assert peers(own.get("egress", []), "to") == calls
    callers = {other for other in SERVICES if service in peers_called(other)}
    assert peers(own["ingress"], "from") == callers
    if calls:
        assert settings.service_token, "calls its peers but has no service token"


def test_topics_cover_the_event_contract(rendered: dict[str, list[Manifest]]) -> None:
    for overlay, objects in rendered.items():
        topics = {t["metadata"]["name"]: t["spec"] for t in of_kind(objects, "KafkaTopic")}
        assert set(topics) == set(TOPIC_PARTITIONS), overlay
        brokers = sum(
            p["spec"]["replicas"]
            for p in of_kind(objects, "KafkaNodePool")
            if "broker" in p["spec"]["roles"]
        )
        for name, spec in topics.items():
            assert spec["partitions"] >= TOPIC_PARTITIONS[name]
            assert spec["replicas"] <= brokers
            assert spec["config"]["cleanup.policy"] == "delete"
            assert int(spec["config"]["retention.ms"]) >= 7 * 24 * 3600 * 1000
            assert spec["config"]["min.insync.replicas"] < spec["replicas"] or brokers == 1


def test_prod_survives_losing_a_node(rendered: dict[str, list[Manifest]]) -> None:
    objects = rendered["prod"]
    pools = {p["metadata"]["name"]: p["spec"] for p in of_kind(objects, "KafkaNodePool")}
    assert pools["broker"]["roles"] == ["broker"] and pools["broker"]["replicas"] == 3
    assert pools["controller"]["roles"] == ["controller"] and pools["controller"]["replicas"] == 3
    for topic in of_kind(objects, "KafkaTopic"):
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == 2
    kafka = find(objects, "Kafka", "ecips")["spec"]["kafka"]["config"]
    assert kafka["default.replication.factor"] == 3 and kafka["min.insync.replicas"] == 2
    database = find(objects, "Cluster", "ecips-db")["spec"]
    assert database["instances"] == 3
    assert database["postgresql"]["synchronous"]["number"] >= 1
    assert database["affinity"]["podAntiAffinityType"] == "required"
    hpas = {h["metadata"]["name"]: h["spec"] for h in of_kind(objects, "HorizontalPodAutoscaler")}
    for service in SERVICES:
        deployment = find(objects, "Deployment", service)
        pod = deployment["spec"]["template"]["spec"]
        replicas = (
            hpas[service]["minReplicas"] if service in hpas else deployment["spec"]["replicas"]
        )
        assert replicas >= 2, service
        assert pod["affinity"]["podAntiAffinity"], service
        assert pod["topologySpreadConstraints"], service
    assert find(objects, "ScheduledBackup", "ecips-db-nightly")["spec"]["method"] == "plugin"
    plugin = database["plugins"][0]
    assert plugin["isWALArchiver"] is True
    find(objects, "ObjectStore", plugin["parameters"]["barmanObjectName"])


def test_dev_runs_one_of_everything(rendered: dict[str, list[Manifest]]) -> None:
    objects = rendered["dev"]
    for deployment in of_kind(objects, "Deployment"):
        assert deployment["spec"].get("replicas", 1) == 1
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["maxReplicas"] == 1
    assert [p["spec"]["replicas"] for p in of_kind(objects, "KafkaNodePool")] == [1]
    assert find(objects, "Cluster", "ecips-db")["spec"]["instances"] == 1


def test_database_roles_match_the_services(rendered: dict[str, list[Manifest]]) -> None:
    """One login role per service, owning the schema of the service's name, with the
    password from the same Secret the service's pods read."""
    objects = rendered["prod"]
    spec = find(objects, "Cluster", "ecips-db")["spec"]
    sql = spec["bootstrap"]["initdb"]["postInitApplicationSQL"]
    roles = {r["name"]: r for r in spec["managed"]["roles"]}
    assert set(roles) == set(SERVICES)
    for service in SERVICES:
        assert f"CREATE ROLE {service} NOLOGIN" in sql
        assert f"CREATE SCHEMA {service} AUTHORIZATION {service}" in sql
        assert roles[service]["login"] is True
        assert roles[service]["passwordSecret"]["name"] == f"ecips-{service}-db"
    assert spec["enableSuperuserAccess"] is False


def test_connection_limits_fit_the_largest_replica_counts(
    rendered: dict[str, list[Manifest]],
) -> None:
    """Each pod opens at most pool + overflow connections plus one LISTEN; at the
    largest replica count plus a rolling update's surge pod, every service stays within
    its role's limit, and all limits together within max_connections."""
    objects = rendered["prod"]
    config = next(iter(of_kind(objects, "ConfigMap")))["data"]
    spec = find(objects, "Cluster", "ecips-db")["spec"]
    limits = {r["name"]: r["connectionLimit"] for r in spec["managed"]["roles"]}
    hpas = {h["metadata"]["name"]: h["spec"] for h in of_kind(objects, "HorizontalPodAutoscaler")}
    for service in SERVICES:
        deployment = find(objects, "Deployment", service)["spec"]
        pods = hpas[service]["maxReplicas"] if service in hpas else deployment["replicas"]
        pods += deployment["strategy"]["rollingUpdate"]["maxSurge"]
        pool = int(config[f"ECIPS_{service.upper()}_DATABASE_POOL_SIZE"])
        assert pods * (2 * pool + 1) <= limits[service], service
    assert sum(limits.values()) < int(spec["postgresql"]["parameters"]["max_connections"])
