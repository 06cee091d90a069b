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
