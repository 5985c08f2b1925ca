# syntax=docker/dockerfile:1
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_PATH=/data/bot.db

WORKDIR /app
# Dependencies first, so code changes don't reinstall them.
COPY requirements.lock .
RUN pip install -r requirements.lock

COPY bot ./bot
COPY cogs ./cogs

RUN useradd --system --uid 10001 --home /app bot && mkdir /data && chown bot /data
USER bot
VOLUME ["/data"]

# Settings come from the environment (docker run --env-file .env ...).
CMD ["python", "-m", "bot"]
