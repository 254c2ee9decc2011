# Conveyor API: FastAPI behind API Gateway HTTP API (Mangum), as a container-image Lambda.
# Build from the repository root:  docker build -f docker/api.Dockerfile -t conveyor-api .
ARG LAMBDA_IMAGE=public.ecr.aws/lambda/python:3.12

# ---------------------------------------------------------------- dependencies (cached until pyproject.toml changes)
FROM ${LAMBDA_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY pyproject.toml /src/pyproject.toml
# The runtime dependencies plus the "api" optional group only, read from pyproject.toml.
RUN python -c "import tomllib; p = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['api']))" > /tmp/requirements.txt \
 && pip install --no-cache-dir --target /opt/deps -r /tmp/requirements.txt \
 && python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/deps

# ---------------------------------------------------------------- the project itself
FROM deps AS build
COPY . /src
# Bytecode is compiled here: Lambda's file system is read-only, so a module without a .pyc is
# compiled again on every cold start. unchecked-hash: the image never changes under it.
RUN pip install --no-cache-dir --no-deps --target /opt/app /src \
 && python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/app

# ---------------------------------------------------------------- runtime: packages in the task root, no sources, no build tools
FROM ${LAMBDA_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    CONVEYOR_LOG_FORMAT=json
COPY --from=deps /opt/deps ${LAMBDA_TASK_ROOT}
COPY --from=build /opt/app ${LAMBDA_TASK_ROOT}
CMD ["api.handler.handler"]
