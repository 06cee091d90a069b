# Sourced by ./test when CI=true: the real PostgreSQL and Redis of this machine, started with the
# machine's own commands when they are down; failing loudly when they cannot be reached.

wait_for() {
  local what="$1" check="$2"
  for _ in $(seq 1 30); do
    if eval "$check" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "FATAL: $what is not reachable after 30 s" >&2
  exit 1
}

pg_ready() {
  python - <<'PY'
import psycopg
psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=2).close()
PY
}

ensure_postgres() {
  if ! pg_ready >/dev/null 2>&1; then
    echo "PostgreSQL is down; starting it..."
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    else
      echo "FATAL: PostgreSQL is not running on 127.0.0.1:5432 and pg_ctlcluster is missing" >&2
      exit 1
    fi
  fi
  wait_for "PostgreSQL on 127.0.0.1:5432" pg_ready
  python - <<'PY'
import psycopg
with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as c:
    if not c.execute("SELECT 1 FROM pg_database WHERE datname = 'smsgate'").fetchone():
        c.execute("CREATE DATABASE smsgate")
PY
}

redis_ready() {
  python - <<'PY'
import redis
redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()
PY
}

ensure_redis() {
  if ! redis_ready >/dev/null 2>&1; then
    echo "Redis is down; starting it..."
    if command -v redis-server >/dev/null 2>&1; then
      mkdir -p /var/lib/redis /var/log/redis
      redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    else
      echo "FATAL: Redis is not running on 127.0.0.1:6379 and redis-server is missing" >&2
      exit 1
    fi
  fi
  wait_for "Redis on 127.0.0.1:6379" redis_ready
}

ensure_browser() {
  # Browser tests drive Debian's Chromium (a browser download does not work here).
  if [ ! -x /usr/bin/chromium ] && [ -d "$ROOT/tests/browser" ]; then
    echo "Installing Debian's chromium for the browser tests..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
}
