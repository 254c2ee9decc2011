# Conveyor worker: Celery on SQS (`conveyor worker`), for ECS Fargate.
# Build from the repository root:  docker build -f docker/worker.Dockerfile -t conveyor-worker .
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# ---------------------------------------------------------------- dependencies (cached until pyproject.toml changes)
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
COPY pyproject.toml /src/pyproject.toml
# The runtime dependencies plus the "worker" optional group only, read from pyproject.toml.
RUN python -c "import tomllib; p = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['worker']))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt

# ---------------------------------------------------------------- the project itself
FROM deps AS build
COPY . /src
RUN pip install --no-cache-dir --no-deps /src

# ---------------------------------------------------------------- runtime: the virtualenv, no sources, no build tools
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONVEYOR_LOG_FORMAT=json \
    CONVEYOR_HOME=/tmp/conveyor
RUN groupadd --system --gid 10001 conveyor \
 && useradd --system --uid 10001 --gid conveyor --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin conveyor
COPY --from=build /opt/venv /opt/venv
WORKDIR /tmp
USER 10001:10001

# ECS sends SIGTERM on scale-in and deploys: Celery's warm shutdown finishes the running executions
# within the task's stopTimeout (120 s) before SIGKILL.
STOPSIGNAL SIGTERM
# Exit 0 while the worker's heartbeat is fresh (see docker/README.md).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["conveyor", "worker", "--check"]
CMD ["conveyor", "worker"]
