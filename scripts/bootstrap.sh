# Sourced by ./start and ./test: a project-local virtualenv with the pinned dependencies.
# Installs again only when pyproject.toml changed since the last install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
mkdir -p "$ROOT/var"

find_python() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "smsgate needs Python 3.11 or newer (python3.11 was not found)." >&2
  return 1
}

ensure_venv() {
  local extras="$1"
  if [ ! -x "$VENV/bin/python" ]; then
    local py
    py="$(find_python)"
    if ! "$py" -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      # Debian splits venv out of the interpreter package.
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing python3-venv with apt-get..."
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        "$py" -m venv "$VENV"
      else
        echo "Cannot create a virtualenv: run 'sudo apt-get install python3-venv' and retry." >&2
        return 1
      fi
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  fi
  local stamp="$VENV/.installed-$extras"
  local want
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "Installing smsgate and its dependencies into .venv ..."
    local target="$ROOT"
    [ "$extras" = "dev" ] && target="$ROOT[dev]"
    if ! "$VENV/bin/python" -m pip install -e "$target" >"$ROOT/var/pip-install.log" 2>&1; then
      tail -n 30 "$ROOT/var/pip-install.log" >&2
      echo "pip install failed; the full log is var/pip-install.log" >&2
      return 1
    fi
    echo "$want" >"$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}
