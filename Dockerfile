# syntax=docker/dockerfile:1
# Pinned base: bump the version deliberately (and rebuild) rather than drifting with a moving tag.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_PATH=/data/bot.db HTTP_HOST=0.0.0.0 HTTP_PORT=8080

WORKDIR /app
# Dependencies first, so code changes don't reinstall them.
COPY requirements.lock .
RUN pip install -r requirements.lock

# The bot itself, installed as a package (this gives the `imagebot` command); the sources are not kept.
COPY pyproject.toml README.md LICENSE /tmp/src/
COPY bot /tmp/src/bot
COPY cogs /tmp/src/cogs
RUN pip install --no-deps /tmp/src && rm -rf /tmp/src

# A fixed numeric UID (no name lookup needed at run time) that owns only the data volume.
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent imagebot \
    && mkdir /data && chown 10001:10001 /data
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080

# /healthz answers 200 while the gateway is connected and the database answers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "bot.ops.healthcheck"]

# Settings come from the environment (docker run --env-file .env ..., or compose.yaml).
CMD ["imagebot"]
