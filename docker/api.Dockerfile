# syntax=docker/dockerfile:1
# The OpenAI-compatible API alone: only the project's core dependencies (no torch, no Triton),
# running as an unprivileged user. Build from the repository root:
#
#   docker build -f docker/api.Dockerfile -t REGISTRY/triton-openai-gateway/api:0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS deps
WORKDIR /build
COPY pyproject.toml ./
# The API's dependencies are the project's core `dependencies`; the extras are for Triton's
# models and for development.
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -r requirements.txt

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    API_HOST=0.0.0.0 \
    API_PORT=9000
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --no-create-home --shell /usr/sbin/nologin gateway
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
COPY api/ api/
# The API's writable state (embedded database, usage journal) lives under /app/.cache; the Helm
# chart mounts a volume there and keeps the root filesystem read-only.
RUN mkdir -p /app/.cache && chown gateway:gateway /app/.cache
USER 10001:10001
EXPOSE 9000
HEALTHCHECK --interval=30s --timeout=3s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9000/health/live', timeout=2)"]
ENTRYPOINT ["python", "-m", "api"]
CMD ["serve"]
