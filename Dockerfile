# syntax=docker/dockerfile:1
# One image for all four services; the command picks what runs:
#   docker run o2c:latest serve credit --port 8002
#   docker run o2c:latest migrate all
# See deploy/README.md and deploy/docker-compose.yml.

# Build stage: install the project (runtime dependencies only, no test extras) into a venv.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
RUN python -m venv /opt/o2c \
 && /opt/o2c/bin/pip install .

# Runtime stage: the venv only, no sources, run as an unprivileged user.
FROM python:3.11-slim

ENV PATH=/opt/o2c/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    O2C_HOST=0.0.0.0 \
    O2C_DATA_DIR=/var/lib/o2c \
    PORT=8000

RUN groupadd --system --gid 10001 o2c \
 && useradd --system --uid 10001 --gid o2c --home-dir /var/lib/o2c --shell /usr/sbin/nologin o2c \
 && mkdir -p /var/lib/o2c/keys \
 && chown -R o2c:o2c /var/lib/o2c

COPY --from=build /opt/o2c /opt/o2c

USER o2c:o2c
WORKDIR /var/lib/o2c

EXPOSE 8000

# Liveness only; PORT must match --port when the command is overridden (compose defines
# its own per-service healthchecks against /ready instead).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"]

ENTRYPOINT ["o2c"]
CMD ["serve", "orders", "--port", "8000"]
