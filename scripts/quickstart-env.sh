# Sourced by ./start (and by the tests that check it): the environment of the quick start.
# The quick start is a local demo, so what production refuses for safety is allowed here when
# the user has not said otherwise (in the environment or in .env).

# Set by ./start only: smsgate.celery keeps Celery's "running as superuser" warning quiet for it.
export SMSGATE_QUICKSTART=1

# Webhooks to a receiver on this machine (a Flask app on localhost:5000, say) are the first
# thing a demo tries; anywhere else private addresses stay refused unless configured. Cloud
# metadata addresses are refused whatever this says.
if [ -z "${SMSGATE_WEBHOOKS_ALLOW_PRIVATE:-}" ] &&
  ! grep -qs '^[[:space:]]*SMSGATE_WEBHOOKS_ALLOW_PRIVATE[[:space:]]*=' "${ROOT:-.}/.env"; then
  export SMSGATE_WEBHOOKS_ALLOW_PRIVATE=true
fi

# A phone on the same network (./start --lan, or HOST=0.0.0.0 ./start; docs/operations.md):
# bind every interface, find the machine's LAN address, accept it as a Host and make it the
# public URL the pairing card gives phones. Without HOST the quick start stays on 127.0.0.1.
export HOST="${HOST:-127.0.0.1}"
if [ "$HOST" != 127.0.0.1 ]; then
  lan_exports="$(python -m smsgate.lan --host "$HOST" --port "${PORT:-8000}" --dotenv "${ROOT:-.}/.env")"
  eval "$lan_exports"
  unset lan_exports
fi
