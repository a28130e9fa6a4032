#!/usr/bin/env bash
# Start PostgreSQL (5432) and Redis (6379) for the integration tests when they are not running.
set -uo pipefail
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! up 6379; then
  if command -v redis-server >/dev/null; then
    echo "starting redis-server on 6379" >&2
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  else
    echo "redis-server not installed: Redis tests will skip (or fail with NEMO_REQUIRE_SERVICES=1)" >&2
  fi
fi
if ! up 5432; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL on 5432" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  else
    echo "PostgreSQL not installed: its tests will skip (or fail with NEMO_REQUIRE_SERVICES=1)" >&2
  fi
fi
for _ in $(seq 1 30); do
  if up 6379 && up 5432; then exit 0; fi
  sleep 1
done
exit 0
