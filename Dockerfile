# IMI Standards API — production image (DESIGN §6–7).
# Build:  docker build -t imi-api .
# Run:    docker run -p 8000:8000 -v imi-data:/var/lib/imi imi-api
#         (SQLite in the volume; for PostgreSQL set IMI_DATABASE_URL, see deploy/)

# --- build: install the pinned dependencies and the package into a venv ------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Dependencies first (their layer is reused until the lock changes). The lock's
# own index options point at the build machine's mirrors: drop them here.
COPY requirements.lock ./
RUN sed '/^--/d' requirements.lock > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt

COPY pyproject.toml README.md ./
COPY service ./service
RUN pip install --no-cache-dir --no-deps . \
    && python -m compileall -q /opt/venv/lib

# --- runtime: the venv, a non-root user, nothing else ------------------------------
FROM python:3.11-slim

LABEL org.opencontainers.image.title="IMI Standards API" \
      org.opencontainers.image.description="Training standards, the registry of aligned schools, signed webhooks"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IMI_DATABASE_URL=sqlite:////var/lib/imi/imi.db \
    IMI_KEYS_DIR=/var/lib/imi/keys

RUN groupadd --system --gid 10001 imi \
    && useradd --system --uid 10001 --gid imi --home-dir /var/lib/imi --no-create-home \
       --shell /usr/sbin/nologin imi \
    && mkdir -p /var/lib/imi \
    && chown imi:imi /var/lib/imi

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /var/lib/imi
VOLUME ["/var/lib/imi"]
EXPOSE 8000

# The slim image has no curl: ask /healthz with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3).status != 200)"]

CMD ["imi-api", "serve", "--host", "0.0.0.0"]
