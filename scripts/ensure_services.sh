#!/usr/bin/env bash
# Make sure the Redis and PostgreSQL servers the tests use are up; start them if they are not.
# Fails loudly (exit 1) when one cannot be started: tests never skip a missing service silently.
set -euo pipefail
REDIS_URL="${TIERROUTE_REDIS_URL:-redis://127.0.0.1:6379/0}"
PG_HOST=127.0.0.1
PG_PORT=5432

redis_up() { redis-cli -u "$REDIS_URL" ping 2>/dev/null | grep -q PONG; }
pg_up() { pg_isready -h "$PG_HOST" -p "$PG_PORT" -q 2>/dev/null; }

if ! redis_up; then
  echo "ensure_services: Redis not answering at $REDIS_URL; starting it" >&2
  if command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  for _ in $(seq 1 50); do redis_up && break; sleep 0.2; done
  redis_up || { echo "ensure_services: FAILED to start Redis (need redis-server on PATH)" >&2; exit 1; }
fi

if ! pg_up; then
  echo "ensure_services: PostgreSQL not answering at $PG_HOST:$PG_PORT; starting it" >&2
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 50); do pg_up && break; sleep 0.2; done
  pg_up || { echo "ensure_services: FAILED to start PostgreSQL" >&2; exit 1; }
fi
echo "ensure_services: redis and postgresql are up"
