#!/usr/bin/env python3
"""Checks the deployment without a cluster.

For each Kustomize directory (by default the base and both overlays) it renders the
manifests with ``kubectl kustomize``, validates every object offline (built-in kinds
against the Kubernetes schemas bundled with ``kubernetes-validate``, strict; custom
resources against ``deploy/schemas``), and applies the project's policies. It then
checks the Dockerfile and ``.dockerignore``. It prints what it checked and exits 1 on
any violation (2 when it cannot run at all).

    .venv/bin/python deploy/check.py
    .venv/bin/python deploy/check.py deploy/k8s/overlays/prod --kubernetes-version 1.33
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
SCHEMAS = DEPLOY / "schemas"
DEFAULT_KUSTOMIZATIONS = (
    DEPLOY / "k8s" / "base",
    DEPLOY / "k8s" / "overlays" / "dev",
    DEPLOY / "k8s" / "overlays" / "prod",
)
# The oldest Kubernetes the manifests support (deploy/README.md) and the newest the
# bundled schemas know: an API removed or changed in between fails one of them.
DEFAULT_KUBERNETES_VERSIONS = ("1.30", "latest")

Manifest = dict[str, Any]

# Kinds that live outside namespaces; everything else must name its namespace.
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "IngressClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    }
)
LONG_RUNNING = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
WORKLOADS = LONG_RUNNING | {"Job", "CronJob", "ReplicaSet", "Pod"}

SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|API_KEY|CREDENTIAL", re.I)
ENV_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/:@\s]*:([^@\s]*)@", re.I)


# --- results -------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    source: str  # the kustomization directory or file checked
    subject: str  # Kind/namespace/name, or a file
    policy: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.subject}: [{self.policy}] {self.message}"


@dataclass
class Outcome:
    """One check over one source: how many things it looked at, what was wrong."""

    name: str
    checked: int
    unit: str
    violations: list[Violation] = field(default_factory=list)


def ref(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    name = meta.get("name", "?")
    return (
        f"{obj.get('kind', '?')}/{namespace}/{name}" if namespace else f"{obj.get('kind')}/{name}"
    )


# --- rendering -----------------------------------------------------------------------


class CheckError(Exception):
    """The check cannot run (no kubectl, a kustomization that does not build)."""


def find_kubectl(explicit: str | None = None) -> str:
    """kubectl from --kubectl, else next to this Python (the kubectl wheel), else PATH."""
    if explicit:
        if not Path(explicit).is_file():
            raise CheckError(f"kubectl not found at {explicit}")
        return explicit
    for candidate in (str(Path(sys.executable).parent / "kubectl"), shutil.which("kubectl")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise CheckError("kubectl not found: install the project (make install) or pass --kubectl")


def render(kustomization: Path, kubectl: str) -> list[Manifest]:
    result = subprocess.run(
        [kubectl, "kustomize", str(kustomization)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise CheckError(f"kubectl kustomize {kustomization} failed:\n{result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


# --- schemas -------------------------------------------------------------------------


class SchemaValidator:
    """Offline schema validation of rendered objects for one Kubernetes version."""

    def __init__(self, kubernetes_version: str = "1.30") -> None:
        root = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
        versions = sorted(
            (
                tuple(int(part) for part in entry.name[1:].split("-")[0].split(".")[:2])
                for entry in root.iterdir()
                if entry.name.startswith("v") and entry.name.endswith("-local-strict")
            ),
        )
        if kubernetes_version == "latest":
            wanted = versions[-1]
        else:
            wanted = tuple(int(part) for part in kubernetes_version.split(".")[:2])
            if wanted not in versions:
                known = ", ".join(f"{a}.{b}" for a, b in versions)
                raise CheckError(f"no schemas for Kubernetes {kubernetes_version} (have {known})")
        self.version = f"{wanted[0]}.{wanted[1]}"
        self._dir = root / f"v{self.version}.0-local-strict"
        definitions = json.loads((self._dir / "_definitions.json").read_text())
        self._registry: Registry[Any] = Registry().with_resource(
            definitions["$id"], Resource.from_contents(definitions)
        )
        self._validators: dict[tuple[str, str], jsonschema.protocols.Validator | None] = {}

    def _builtin_schema(self, api_version: str, kind: str) -> dict[str, Any] | None:
        # kubernetes-validate's file names: apps/v1 -> apps-v1, networking.k8s.io/v1 ->
        # networking-v1, v1 -> v1.
        group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        path = self._dir / f"{kind.lower()}-{group_version}.json"
        if not path.is_file():
            return None
        schema: dict[str, Any] = json.loads(path.read_text())
        return schema

    @staticmethod
    def _custom_schema(api_version: str, kind: str) -> dict[str, Any] | None:
        path = SCHEMAS / f"{api_version.replace('/', '_')}_{kind}.json"
        if not path.is_file():
            return None
        schema: dict[str, Any] = json.loads(path.read_text())
        return schema

    def origin(self, obj: Mapping[str, Any]) -> str:
        """'builtin' or 'custom' (which schema set validates it), or 'unknown'."""
        api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
        if self._builtin_schema(api_version, kind) is not None:
            return "builtin"
        if self._custom_schema(api_version, kind) is not None:
            return "custom"
        return "unknown"

    def _validator(self, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
        key = (api_version, kind)
        if key not in self._validators:
            schema = self._builtin_schema(api_version, kind) or self._custom_schema(
                api_version, kind
            )
            self._validators[key] = (
                None
                if schema is None
                else jsonschema.Draft202012Validator(schema, registry=self._registry)
            )
        return self._validators[key]

    def errors(self, obj: Mapping[str, Any]) -> list[str]:
        api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
        validator = self._validator(api_version, kind)
        if validator is None:
            return [
                f"no schema for {api_version} {kind}: not a Kubernetes {self.version} kind, "
                f"and no deploy/schemas/{api_version.replace('/', '_')}_{kind}.json"
            ]
        found = sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.path)))
        return [f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in found]


# --- pods and selectors --------------------------------------------------------------


@dataclass(frozen=True)
class PodTemplate:
    owner: Manifest
    labels: Mapping[str, str]
    spec: Mapping[str, Any]

    @property
    def namespace(self) -> str | None:
        namespace: str | None = (self.owner.get("metadata") or {}).get("namespace")
        return namespace

    def containers(self, *, init: bool = True) -> Iterator[Mapping[str, Any]]:
        yield from self.spec.get("containers") or []
        if init:
            yield from self.spec.get("initContainers") or []


def pod_template(obj: Manifest) -> PodTemplate | None:
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        template: Mapping[str, Any] = {"metadata": obj.get("metadata") or {}, "spec": spec}
    elif kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    elif kind in WORKLOADS:
        template = spec.get("template") or {}
    else:
        return None
    labels = (template.get("metadata") or {}).get("labels") or {}
    return PodTemplate(obj, labels, template.get("spec") or {})


def workloads(objects: Iterable[Manifest]) -> list[PodTemplate]:
    return [pod for obj in objects if (pod := pod_template(obj)) is not None]


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes label selector semantics; an empty selector matches everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def same_namespace(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return bool(
        (a.get("metadata") or {}).get("namespace") == (b.get("metadata") or {}).get("namespace")
    )


def of_kind(objects: Iterable[Manifest], *kinds: str) -> list[Manifest]:
    return [obj for obj in objects if obj.get("kind") in kinds]


# --- policies ------------------------------------------------------------------------

Policy = Callable[[str, list[Manifest]], Outcome]
POLICIES: dict[str, tuple[str, Policy]] = {}


def policy(name: str, summary: str) -> Callable[[Policy], Policy]:
    def register(function: Policy) -> Policy:
        POLICIES[name] = (summary, function)
        return function

    return register


@policy("namespace", "every namespaced object names its namespace")
def check_namespace(source: str, objects: list[Manifest]) -> Outcome:
    outcome = Outcome("namespace", 0, "namespaced objects")
    for obj in objects:
        if obj.get("kind") in CLUSTER_SCOPED:
            continue
        outcome.checked += 1
        if not (obj.get("metadata") or {}).get("namespace"):
            outcome.violations.append(
                Violation(source, ref(obj), "namespace", "no metadata.namespace")
            )
    return outcome


@policy("resources", "every container requests cpu and memory and has a memory limit")
def check_resources(source: str, objects: list[Manifest]) -> Outcome:
    outcome = Outcome("resources", 0, "containers")
    for pod in workloads(objects):
        for container in pod.containers():
            outcome.checked += 1
            resources = container.get("resources") or {}
            requests = resources.get("requests") or {}
            limits = resources.get("limits") or {}
            missing = [f"requests.{r}" for r in ("cpu", "memory") if r not in requests]
            if "memory" not in limits:
                missing.append("limits.memory")
            if missing:
                outcome.violations.append(
                    Violation(
                        source,
                        ref(pod.owner),
                        "resources",
                        f"container {container.get('name')} has no {', '.join(missing)}",
                    )
                )
    return outcome


@policy("probes", "every long-running container has startup, liveness and readiness probes")
def check_probes(source: str, objects: list[Manifest]) -> Outcome:
    outcome = Outcome("probes", 0, "containers")
    for pod in workloads(objects):
        if pod.owner.get("kind") not in LONG_RUNNING:
            continue
        for container in pod.containers(init=False):
            outcome.checked += 1
            missing = [
                probe
                for probe in ("startupProbe", "livenessProbe", "readinessProbe")
                if not container.get(probe)
            ]
            if missing:
                outcome.violations.append(
                    Violation(
                        source,
                        ref(pod.owner),
                        "probes",
                        f"container {container.get('name')} has no {', '.join(missing)}",
                    )
                )
    return outcome


def effective(container: Mapping[str, Any], pod: Mapping[str, Any], key: str) -> Any:
    """A security setting as it applies: the container's, else the pod's."""
    return container.get(key, pod.get(key))


@policy(
    "security-context",
    "every pod runs as non-root with seccomp and no service account token; every container "
    "has no privilege escalation, a read-only root filesystem and all capabilities dropped",
)
def check_security_context(source: str, objects: list[Manifest]) -> Outcome:
    outcome = Outcome("security-context", 0, "containers")
    accounts = {
        ((sa.get("metadata") or {}).get("namespace"), (sa.get("metadata") or {}).get("name")): sa
        for sa in of_kind(objects, "ServiceAccount")
    }
    for pod in workloads(objects):
        pod_context = pod.spec.get("securityContext") or {}
        problems: list[str] = []
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.spec.get(host):
                problems.append(f"pod sets {host}")
        account = accounts.get((pod.namespace, pod.spec.get("serviceAccountName", "default")))
        automount = pod.spec.get(
            "automountServiceAccountToken",
            (account or {}).get("automountServiceAccountToken", True),
        )
        if automount is not False:
            problems.append("pod mounts a service account token (automountServiceAccountToken)")
        for container in pod.containers():
            outcome.checked += 1
            context = container.get("securityContext") or {}
            name = container.get("name")

            if effective(context, pod_context, "runAsNonRoot") is not True:
                problems.append(f"container {name}: runAsNonRoot is not true")
            if effective(context, pod_context, "runAsUser") == 0:
                problems.append(f"container {name}: runAsUser is 0 (root)")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"container {name}: allowPrivilegeEscalation is not false")
            if context.get("privileged"):
                problems.append(f"container {name}: privileged")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"container {name}: readOnlyRootFilesystem is not true")
            capabilities = context.get("capabilities") or {}
            if "ALL" not in (capabilities.get("drop") or []):
                problems.append(f"container {name}: capabilities.drop does not include ALL")
            if capabilities.get("add"):
                problems.append(f"container {name}: adds capabilities {capabilities['add']}")
            seccomp = (effective(context, pod_context, "seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                problems.append(f"container {name}: no RuntimeDefault seccomp profile")
        outcome.violations += [
            Violation(source, ref(pod.owner), "security-context", problem) for problem in problems
        ]
    return outcome


def image_tag(image: str) -> str | None:
    """The tag of an image reference (None if it has none), ignoring a digest."""
    if "@" in image:
        return "@digest"
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


@policy("image-tag", "every image names a tag or digest, never latest")
def check_image_tags(source: str, objects: list[Manifest]) -> Outcome:
    outcome = Outcome("image-tag", 0, "containers")
    for pod in workloads(objects):
        for container in pod.containers():
            outcome.checked += 1
            image = str(container.get("image") or "")
            tag = image_tag(image)
            if tag is None or tag == "latest":
                outcome.violations.append(
                    Violation(
                        source,
                        ref(pod.owner),
                        "image-tag",
                        f"container {container.get('name')} image {image!r} "
                        + ("has no tag (means latest)" if tag is None else "uses latest"),
                    )
                )
    return outcome


def minimum_replicas(deployment: Manifest, objects: list[Manifest]) -> int:
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if (
            same_namespace(hpa, deployment)
            and target.get("kind") == deployment.get("kind")
            and target.get("name") == (deployment.get("metadata") or {}).get("name")
        ):
            return int((hpa.get("spec") or {}).get("minReplicas", 1))
    return int((deployment.get("spec") or {}).get("replicas", 1))


def allowed_disruptions(budget: Mapping[str, Any], replicas: int) -> int:
    """How many pods the budget lets a drain evict (percentages rounded as Kubernetes does)."""
    spec = budget.get("spec") or {}

    def count(value: Any, round_up: bool) -> int:
        if isinstance(value, str) and value.endswith("%"):
            exact = replicas * int(value[:-1]) / 100
            return int(-(-exact // 1)) if round_up else int(exact)
        return int(value)

    if "maxUnavailable" in spec:
        return count(spec["maxUnavailable"], round_up=True)
    if "minAvailable" in spec:
        return replicas - count(spec["minAvailable"], round_up=True)
    return 0


@policy(
    "pod-disruption-budget",
    "every Deployment has a PodDisruptionBudget that still lets a drain evict a pod",
)
def check_disruption_budgets(source: str, objects: list[Manifest]) -> Outcome:
    outcome = Outcome("pod-disruption-budget", 0, "Deployments")
    budgets = of_kind(objects, "PodDisruptionBudget")
    for pod in workloads(objects):
        if pod.owner.get("kind") != "Deployment":
            continue
        outcome.checked += 1
        mine = [
            b
            for b in budgets
            if same_namespace(b, pod.owner)
            and selector_matches((b.get("spec") or {}).get("selector"), pod.labels)
        ]
        if not mine:
            outcome.violations.append(
                Violation(source, ref(pod.owner), "pod-disruption-budget", "no budget selects it")
            )
            continue
        replicas = minimum_replicas(pod.owner, objects)
        for budget in mine:
            if allowed_disruptions(budget, replicas) < 1:
                outcome.violations.append(
                    Violation(
                        source,
                        ref(pod.owner),
                        "pod-disruption-budget",
                        f"{ref(budget)} allows no eviction at {replicas} replica(s): "
                        "node drains would hang",
                    )
                )
    return outcome


def policy_types(np: Mapping[str, Any]) -> list[str]:
    spec = np.get("spec") or {}
    declared: list[str] | None = spec.get("policyTypes")
    if declared:
        return declared
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


@policy(
    "network-policy",
    "ingress is denied by default in every namespace, every workload's egress is restricted, "
    "and every Deployment has a NetworkPolicy of its own",
)
def check_network_policies(source: str, objects: list[Manifest]) -> Outcome:
    outcome = Outcome("network-policy", 0, "workloads")
    policies = of_kind(objects, "NetworkPolicy")
    pods = workloads(objects)
    for namespace in sorted({pod.namespace or "" for pod in pods}):
        denies = [
            np
            for np in policies
            if (np.get("metadata") or {}).get("namespace", "") == namespace
            and (np.get("spec") or {}).get("podSelector") == {}
            and "Ingress" in policy_types(np)
            and not (np.get("spec") or {}).get("ingress")
        ]
        if not denies:
            outcome.violations.append(
                Violation(
                    source,
                    f"Namespace/{namespace}",
                    "network-policy",
                    "no default-deny ingress NetworkPolicy (podSelector {}, no ingress rules)",
                )
            )
    for pod in pods:
        outcome.checked += 1
        selecting = [
            np
            for np in policies
            if same_namespace(np, pod.owner)
            and selector_matches((np.get("spec") or {}).get("podSelector"), pod.labels)
        ]
        if not any("Egress" in policy_types(np) for np in selecting):
            outcome.violations.append(
                Violation(
                    source,
                    ref(pod.owner),
                    "network-policy",
                    "egress unrestricted: no NetworkPolicy with policyTypes Egress selects it",
                )
            )
        if pod.owner.get("kind") != "Deployment":
            continue
        others = [p for p in pods if p is not pod and p.namespace == pod.namespace]
        own = [
            np
            for np in selecting
            if (np.get("spec") or {}).get("podSelector")
            and not any(
                selector_matches((np.get("spec") or {}).get("podSelector"), p.labels)
                for p in others
            )
        ]
        if not own:
            outcome.violations.append(
                Violation(
                    source,
                    ref(pod.owner),
                    "network-policy",
                    "no NetworkPolicy of its own (selecting its pods and no other workload's)",
                )
            )
        elif not any("Ingress" in policy_types(np) for np in own):
            outcome.violations.append(
                Violation(
                    source,
                    ref(pod.owner),
                    "network-policy",
                    "its own NetworkPolicy does not say who may reach it (policyTypes Ingress)",
                )
            )
    return outcome


def secret_looking(name: str, value: Any) -> str | None:
    """Why a literal setting looks like a committed secret, or None."""
    text = "" if value is None else str(value)
    if not text.strip():
        return None
    is_path = name.upper().endswith(("_FILE", "_PATH", "_DIR"))
    if SECRET_NAME.search(name) and not is_path and not ENV_REFERENCE.fullmatch(text.strip()):
        return f"{name} has a literal value"
    match = URL_PASSWORD.match(text)
    if match and match.group(1) and not ENV_REFERENCE.fullmatch(match.group(1)):
        return f"{name} holds a URL with a literal password"
    return None


@policy(
    "secrets",
    "Secrets are referenced, never committed with values; no password, token or "
    "credential-bearing URL is set literally in an env var or ConfigMap",
)
def check_secrets(source: str, objects: list[Manifest]) -> Outcome:
    outcome = Outcome("secrets", 0, "objects")
    for obj in objects:
        kind = obj.get("kind")
        if kind == "Secret":
            outcome.checked += 1
            keys = sorted({*(obj.get("data") or {}), *(obj.get("stringData") or {})})
            if keys:
                outcome.violations.append(
                    Violation(
                        source,
                        ref(obj),
                        "secrets",
                        f"Secret committed with values ({', '.join(keys)}): create it in the "
                        "cluster instead (deploy/README.md, Secrets)",
                    )
                )
        elif kind == "ConfigMap":
            outcome.checked += 1
            for key, value in (obj.get("data") or {}).items():
                if reason := secret_looking(key, value):
                    outcome.violations.append(Violation(source, ref(obj), "secrets", reason))
    for pod in workloads(objects):
        outcome.checked += 1
        for container in pod.containers():
            for env in container.get("env") or []:
                if "value" in env and (reason := secret_looking(env["name"], env["value"])):
                    outcome.violations.append(
                        Violation(
                            source,
                            ref(pod.owner),
                            "secrets",
                            f"container {container.get('name')}: {reason}",
                        )
                    )
    return outcome


def _env_names(
    container: Mapping[str, Any], config_maps: Mapping[str, Manifest]
) -> set[str] | None:
    """The variables envFrom defines, or None when a source's keys are unknown here
    (a Secret, or a ConfigMap made elsewhere)."""
    names: set[str] = set()
    for source in container.get("envFrom") or []:
        config = source.get("configMapRef")
        if not config or config.get("name") not in config_maps:
            return None
        prefix = source.get("prefix", "")
        names |= {prefix + key for key in config_maps[config["name"]].get("data") or {}}
    return names


@policy(
    "references",
    "what the objects refer to exists: Services select pods and name their ports, Ingress "
    "backends and HPA targets exist, ConfigMaps and $(VAR) references resolve",
)
def check_references(source: str, objects: list[Manifest]) -> Outcome:
    outcome = Outcome("references", 0, "references")
    pods = workloads(objects)

    def by_name(kind: str, namespace: str | None) -> dict[str, Manifest]:
        return {
            (o.get("metadata") or {}).get("name", ""): o
            for o in of_kind(objects, kind)
            if (o.get("metadata") or {}).get("namespace") == namespace
        }

    def fail(obj: Mapping[str, Any], message: str) -> None:
        outcome.violations.append(Violation(source, ref(obj), "references", message))

    for service in of_kind(objects, "Service"):
        spec = service.get("spec") or {}
        if not spec.get("selector"):
            continue
        outcome.checked += 1
        selected = [
            p
            for p in pods
            if same_namespace(p.owner, service)
            and selector_matches({"matchLabels": spec["selector"]}, p.labels)
        ]
        if not selected:
            fail(service, "its selector matches no workload's pods")
            continue
        kinds = {p.owner.get("kind") for p in selected}
        if "Job" in kinds or "CronJob" in kinds:
            fail(service, "its selector also matches Job pods")
        for port in spec.get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            for pod in selected:
                declared = [p for c in pod.containers(init=False) for p in c.get("ports") or []]
                if not any(target in (p.get("name"), p.get("containerPort")) for p in declared):
                    fail(service, f"targetPort {target!r} is not a port of {ref(pod.owner)}")
    for ingress in of_kind(objects, "Ingress"):
        services = by_name("Service", (ingress.get("metadata") or {}).get("namespace"))
        for rule in (ingress.get("spec") or {}).get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                outcome.checked += 1
                backend = (path.get("backend") or {}).get("service") or {}
                backend_service = services.get(backend.get("name", ""))
                port = backend.get("port") or {}
                if backend_service is None:
                    fail(ingress, f"path {path.get('path')}: no Service {backend.get('name')}")
                elif not any(
                    port.get("name") == p.get("name") or port.get("number") == p.get("port")
                    for p in (backend_service.get("spec") or {}).get("ports") or []
                ):
                    fail(ingress, f"path {path.get('path')}: Service has no port {port}")
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        outcome.checked += 1
        spec = hpa.get("spec") or {}
        target = spec.get("scaleTargetRef") or {}
        found = by_name(target.get("kind", ""), (hpa.get("metadata") or {}).get("namespace"))
        scaled = found.get(target.get("name", ""))
        if scaled is None:
            fail(hpa, f"scaleTargetRef {target.get('kind')}/{target.get('name')} does not exist")
            continue
        if "replicas" in (scaled.get("spec") or {}):
            fail(scaled, "sets spec.replicas although an HPA scales it: every apply resets it")
        if int(spec.get("minReplicas", 1)) > int(spec.get("maxReplicas", 0)):
            fail(hpa, "minReplicas is above maxReplicas")
    for pod in pods:
        config_maps = by_name("ConfigMap", pod.namespace)
        for container in pod.containers():
            for env_source in container.get("envFrom") or []:
                config = env_source.get("configMapRef")
                if config and not config.get("optional"):
                    outcome.checked += 1
                    if config["name"] not in config_maps:
                        fail(pod.owner, f"envFrom ConfigMap {config['name']} does not exist")
            defined = _env_names(container, config_maps)
            for env in container.get("env") or []:
                for name in ENV_REFERENCE.findall(str(env.get("value", ""))):
                    outcome.checked += 1
                    if defined is not None and name not in defined:
                        fail(
                            pod.owner,
                            f"container {container.get('name')}: {env['name']} refers to "
                            f"$({name}), not defined before it",
                        )
                if defined is not None:
                    defined.add(env["name"])
        for volume in pod.spec.get("volumes") or []:
            config = volume.get("configMap")
            if config and not config.get("optional"):
                outcome.checked += 1
                if config.get("name") not in config_maps:
                    fail(pod.owner, f"volume {volume.get('name')}: no ConfigMap {config['name']}")
    return outcome


# --- the Kubernetes check ------------------------------------------------------------


def check_schemas(
    source: str, objects: list[Manifest], validators: Sequence[SchemaValidator]
) -> Outcome:
    versions = ", ".join(v.version for v in validators)
    outcome = Outcome("schema", 0, f"objects (Kubernetes {versions} strict; CRDs: deploy/schemas)")
    for obj in objects:
        outcome.checked += 1
        if not (obj.get("metadata") or {}).get("name"):
            outcome.violations.append(Violation(source, ref(obj), "schema", "no metadata.name"))
        # The same error under several versions is reported once, naming them.
        found: dict[str, list[str]] = {}
        for validator in validators:
            for error in validator.errors(obj):
                found.setdefault(error, []).append(validator.version)
        origin = validators[0].origin(obj) if validators else "unknown"
        for error, where in found.items():
            against = (
                f"deploy/schemas, Kubernetes {', '.join(where)} types"
                if origin == "custom"
                else f"Kubernetes {', '.join(where)}"
            )
            outcome.violations.append(Violation(source, ref(obj), "schema", f"{error} ({against})"))
    return outcome


def check_manifests(
    source: str, objects: list[Manifest], validators: Sequence[SchemaValidator]
) -> list[Outcome]:
    outcomes = [check_schemas(source, objects, validators)]
    outcomes += [function(source, objects) for _, function in POLICIES.values()]
    return outcomes


def referenced_secrets(objects: Iterable[Manifest]) -> dict[str, set[str]]:
    """Secret name -> keys read, over every place a rendered object names a Secret."""
    found: dict[str, set[str]] = {}

    def note(name: str | None, key: str | None = None) -> None:
        if name:
            keys = found.setdefault(name, set())
            if key:
                keys.add(key)

    for obj in objects:
        pod = pod_template(obj)
        if pod is not None:
            for container in pod.containers():
                for env in container.get("env") or []:
                    secret = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
                    note(secret.get("name"), secret.get("key"))
                for env_source in container.get("envFrom") or []:
                    note((env_source.get("secretRef") or {}).get("name"))
            for volume in pod.spec.get("volumes") or []:
                secret = volume.get("secret") or {}
                for item in secret.get("items") or [{}]:
                    note(secret.get("secretName"), item.get("key"))
        spec = obj.get("spec") or {}
        if obj.get("kind") == "Cluster":
            for role in (spec.get("managed") or {}).get("roles") or []:
                for key in ("username", "password"):
                    note((role.get("passwordSecret") or {}).get("name"), key)
        if obj.get("kind") == "ObjectStore":
            credentials = (spec.get("configuration") or {}).get("s3Credentials") or {}
            for value in credentials.values():
                if isinstance(value, dict):
                    note(value.get("name"), value.get("key"))
        if obj.get("kind") == "Ingress":
            for tls in spec.get("tls") or []:
                note(tls.get("secretName"), "tls.crt")
                note(tls.get("secretName"), "tls.key")
    return found


# --- the image -----------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, args)


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the build stages (continuations joined, comments dropped)."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip().strip('"')
        elif instruction == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            base = re.sub(
                r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), ""), words[0]
            )
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, alias))
        elif stages:
            stages[-1].instructions.append((instruction, rest))
    return args, stages


BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|clang|make|build-essential|cmake|git|curl|wget|pip|uv|uvx|apt-get\s+install|"
    r"apk\s+add|dnf\s+install|yum\s+install)\b"
)


def check_dockerfile(source: str, text: str) -> Outcome:
    outcome = Outcome("dockerfile", 0, "rules")
    _, stages = parse_dockerfile(text)

    def rule(ok: bool, message: str) -> None:
        outcome.checked += 1
        if not ok:
            outcome.violations.append(Violation(source, "Dockerfile", "dockerfile", message))

    rule(len(stages) >= 2, "not a multi-stage build: build in one stage, run from another")
    if not stages:
        return outcome
    final = stages[-1]
    stage_names = {s.name for s in stages if s.name}
    for stage in stages:
        tag = image_tag(stage.base)
        if stage.base not in stage_names:
            rule(
                tag is not None and tag != "latest",
                f"FROM {stage.base or '(empty)'}: name a tag or digest, never latest",
            )
    rule(
        final.base not in stage_names,
        "the final stage starts FROM a build stage: it would carry the build tools",
    )
    users = [args for instruction, args in final.instructions if instruction == "USER"]
    user = users[-1].split(":")[0] if users else None
    rule(
        user is not None and user not in ("root", "0"),
        "the final stage does not switch to a non-root USER",
    )
    rule(
        user is not None and user.isdigit(),
        "USER should be numeric (uid[:gid]) so Kubernetes can verify runAsNonRoot",
    )
    all_instructions = [i for s in stages for i, _ in s.instructions]
    rule("HEALTHCHECK" not in all_instructions, "HEALTHCHECK present: Kubernetes probes do that")
    syncs = [
        args
        for stage in stages[:-1]
        for instruction, args in stage.instructions
        if instruction == "RUN" and re.search(r"\buv\s+sync\b", args)
    ]
    rule(bool(syncs), "no `uv sync` in a build stage: install from uv.lock")
    for args in syncs:
        rule("--locked" in args or "--frozen" in args, "`uv sync` without --locked: lock ignored")
        rule("--no-dev" in args, "`uv sync` without --no-dev: test and lint tools in the image")
        if "--no-editable" in args and "--no-install-workspace" not in args:
            rule(
                "--no-cache" in args,
                "`uv sync --no-editable` through uv's cache can install wheels built from "
                "older source (the cache only notices pyproject.toml changes): add --no-cache",
            )
    for instruction, args in final.instructions:
        if instruction == "RUN" and (tools := [m.group(0) for m in BUILD_TOOLS.finditer(args)]):
            rule(False, f"the final stage runs {', '.join(map(repr, tools))}: build in the builder")
        if instruction == "COPY" and re.search(r"--from=uv\b|/uv\b", args):
            rule(False, "the final stage copies uv: it is a build tool")
    return outcome


def dockerignore_excludes(patterns: Sequence[str], path: str) -> bool:
    """Whether Docker leaves ``path`` out of the build context (last matching rule wins,
    a rule matching a parent directory matches everything under it)."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip().strip("/")
        regex = _dockerignore_regex(pattern)
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        out.append({"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char)))
        i += 1
    return re.compile("".join(out))


def read_dockerignore(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


MUST_EXCLUDE = (".venv", ".venv/bin/python", ".ecips", ".ecips/keys/signing-key.pem", ".git")
MUST_INCLUDE = (
    "pyproject.toml",
    "uv.lock",
    "libs/common/pyproject.toml",
    "services/ingest/pyproject.toml",
    "src/ecips/cli.py",
)


def check_dockerignore(source: str, text: str) -> Outcome:
    outcome = Outcome(".dockerignore", 0, "paths")
    patterns = read_dockerignore(text)
    for path in MUST_EXCLUDE:
        outcome.checked += 1
        if not dockerignore_excludes(patterns, path):
            outcome.violations.append(
                Violation(source, ".dockerignore", "dockerignore", f"{path} is sent to the build")
            )
    for path in MUST_INCLUDE:
        outcome.checked += 1
        if dockerignore_excludes(patterns, path):
            outcome.violations.append(
                Violation(
                    source,
                    ".dockerignore",
                    "dockerignore",
                    f"{path} is left out: the build needs it",
                )
            )
    return outcome


# --- the command ---------------------------------------------------------------------


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deploy/check.py", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "kustomizations",
        nargs="*",
        type=Path,
        help="Kustomize directories (default: deploy/k8s/base and both overlays)",
    )
    parser.add_argument(
        "--kubernetes-version",
        action="append",
        help="validate against this Kubernetes version; repeatable "
        f"(default: {', '.join(DEFAULT_KUBERNETES_VERSIONS)})",
    )
    parser.add_argument("--kubectl", help="the kubectl binary (default: next to Python, or PATH)")
    parser.add_argument("--dockerfile", type=Path, default=REPO / "Dockerfile")
    parser.add_argument("--dockerignore", type=Path, default=REPO / ".dockerignore")
    parser.add_argument("--no-image", action="store_true", help="skip the Dockerfile checks")
    args = parser.parse_args(argv)

    try:
        kubectl = find_kubectl(args.kubectl)
        validators = [
            SchemaValidator(v) for v in args.kubernetes_version or DEFAULT_KUBERNETES_VERSIONS
        ]
        sources = [
            (display(k), render(k, kubectl)) for k in args.kustomizations or DEFAULT_KUSTOMIZATIONS
        ]
    except CheckError as exc:
        print(f"deploy/check.py: {exc}", file=sys.stderr)
        return 2

    violations: list[Violation] = []
    print(
        f"Rendered with {kubectl} kustomize; "
        f"schemas: Kubernetes {', '.join(v.version for v in validators)}"
    )
    secrets: dict[str, set[str]] = {}
    for source, objects in sources:
        kinds = sorted({str(o.get("kind")) for o in objects})
        print(f"\n{source}: {len(objects)} objects ({', '.join(kinds)})")
        for outcome in check_manifests(source, objects, validators):
            mark = "ok" if not outcome.violations else f"{len(outcome.violations)} FAILED"
            print(f"  {outcome.name:<22} {outcome.checked:>3} {outcome.unit}: {mark}")
            violations += outcome.violations
        for name, keys in referenced_secrets(objects).items():
            secrets.setdefault(name, set()).update(keys)
    if not args.no_image:
        print()
        for outcome in (
            check_dockerfile(display(args.dockerfile), args.dockerfile.read_text()),
            check_dockerignore(display(args.dockerignore), args.dockerignore.read_text()),
        ):
            mark = "ok" if not outcome.violations else f"{len(outcome.violations)} FAILED"
            print(f"{outcome.name:<24} {outcome.checked:>3} {outcome.unit}: {mark}")
            violations += outcome.violations
    print("\nSecrets the overlays reference (create them in the cluster; never commit them):")
    for name in sorted(secrets):
        print(f"  {name:<26} keys: {', '.join(sorted(secrets[name])) or '-'}")
    if violations:
        print(f"\n{len(violations)} violation(s):", file=sys.stderr)
        for violation in violations:
            print(f"  {violation}", file=sys.stderr)
        return 1
    print("\nOK: no violations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
