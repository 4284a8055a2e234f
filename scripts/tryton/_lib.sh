# scripts/tryton/_lib.sh — helpers shared by scripts/tryton/{template,instance,stop} and scripts/demo-erp.
# Sourced, not executed. Computes the repo root from this file's location; all state lives in $ROOT/.tryton.
# Servers are configured through TRYTOND_* environment variables only (no config file), because a config
# file's [web] listen would override the per-instance port.

TRYTON_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$TRYTON_LIB_DIR/../.." && pwd)"
STATE="$ROOT/.tryton"
VENV="$STATE/venv"
TEMPLATE_DIR="$STATE/template"
TRYTON_DB=costs
TRYTON_USER=admin
TRYTON_PASSWORD=admin-secret

# python3 without the pyenv shim's ~0.2 s start-up: the venv's interpreter once it exists.
py() { if [[ -x "$VENV/bin/python3" ]]; then "$VENV/bin/python3" "$@"; else python3 "$@"; fi; }

# Microseconds since the epoch (bash 5); used for the timings the scripts print.
now_us() { echo "${EPOCHREALTIME/./}"; }
# Seconds with 3 decimals between a now_us value and now.
elapsed() { local ms=$(( ($(now_us) - $1) / 1000 )); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }

# A free TCP port on 127.0.0.1 (the kernel picks it: bind port 0).
free_port() {
  py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# True if 127.0.0.1:$1 can be bound (with SO_REUSEADDR, as the server does).
port_is_free() {
  py - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# True if pid $1 is alive and is a trytond process (guards against a recycled pid).
is_trytond_pid() {
  [[ "$1" =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q 'trytond'
}

# start_trytond DIR PORT LOG -> prints the pid. The database file is DIR/costs.sqlite. The server
# ignores SIGHUP (nohup) and has no terminal/pipe of the caller open, so the caller can exit at once.
start_trytond() {
  local dir="$1" port="$2" log="$3"
  env -u TRYTOND_CONFIG \
    TRYTOND_DATABASE__URI=sqlite:// \
    TRYTOND_DATABASE__PATH="$dir" \
    TRYTOND_WEB__LISTEN="127.0.0.1:$port" \
    nohup "$VENV/bin/trytond" -d "$TRYTON_DB" </dev/null >>"$log" 2>&1 &
  echo $!
}

# wait_ready PID URL [TIMEOUT_S] -> 0 once common.server.version answers, 1 if the process died or timed out.
# The server loads the database's models (-d) before it opens the port, so an answer means usable.
wait_ready() {
  local pid="$1" url="$2" timeout="${3:-${TRYTON_START_TIMEOUT:-60}}"
  local deadline=$(( $(now_us) + timeout * 1000000 ))
  while (( $(now_us) < deadline )); do
    kill -0 "$pid" 2>/dev/null || return 1
    if curl -sf -o /dev/null --max-time 2 -H 'Content-Type: application/json' \
         --data '{"id":0,"method":"common.server.version","params":[]}' "${url}rpc/"; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

# stop_pid PID [TIMEOUT_S]: SIGTERM, wait for exit, SIGKILL after the timeout.
stop_pid() {
  local pid="$1" timeout="${2:-10}"
  kill -TERM "$pid" 2>/dev/null || return 0
  local deadline=$(( $(now_us) + timeout * 1000000 ))
  while kill -0 "$pid" 2>/dev/null; do
    if (( $(now_us) >= deadline )); then kill -KILL "$pid" 2>/dev/null || true; break; fi
    sleep 0.05
  done
  # reap if it is our own child (no-op otherwise)
  wait "$pid" 2>/dev/null || true
}

# copy_db SRC DST: consistent copy with sqlite3's backup API (includes anything still in SRC's -wal).
copy_db() {
  rm -f "$2" "$2-wal" "$2-shm"
  py - "$1" "$2" <<'PY'
import sqlite3, sys
src = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
dst = sqlite3.connect(sys.argv[2])
src.backup(dst)
dst.close()
src.close()
PY
}
