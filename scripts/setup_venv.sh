#!/usr/bin/env bash
# Create the virtualenv with Python 3.10 (the one Python TFX 1.16 installs on) and install the pins.
set -euo pipefail
venv=${1:-.venv}
find_python() {
  local candidates=()
  if command -v python3.10 >/dev/null 2>&1 && python3.10 -c 'import sys; assert sys.version_info[:2]==(3,10)' 2>/dev/null; then
    command -v python3.10; return 0
  fi
  if command -v pyenv >/dev/null 2>&1; then
    if PYENV_VERSION=3.10.13 python3.10 -c 'import sys; assert sys.version_info[:2]==(3,10)' 2>/dev/null; then
      PYENV_VERSION=3.10.13 python3.10 -c 'import sys; print(sys.executable)'; return 0
    fi
    for p in "$(pyenv root)"/versions/3.10.*/bin/python; do
      [ -x "$p" ] && { echo "$p"; return 0; }
    done
  fi
  for p in /usr/bin/python3.10 /usr/local/bin/python3.10; do
    [ -x "$p" ] && { echo "$p"; return 0; }
  done
  return 1
}
if [ ! -x "$venv/bin/python" ]; then
  py=$(find_python) || { echo "error: Python 3.10 not found (TFX 1.16 needs Python >=3.9,<3.11); install it, e.g. 'pyenv install 3.10.13'" >&2; exit 1; }
  echo "[setup] creating $venv with $py"
  "$py" -m venv "$venv"
fi
log="$venv/install.log"
quiet_pip() {  # pip's chatter goes to the log; on failure the log's tail is shown
  "$venv/bin/python" -m pip "$@" >>"$log" 2>&1 || { tail -n 30 "$log" >&2; echo "error: pip $* failed (full log: $log)" >&2; exit 1; }
}
echo "[setup] upgrading pip"
quiet_pip install -q --upgrade pip
echo "[setup] installing pinned requirements (about 2 minutes on a fresh machine; log: $log)"
quiet_pip install -q -r requirements.txt
quiet_pip install -q --no-deps -e .
echo "[setup] done: $("$venv/bin/python" --version)"
