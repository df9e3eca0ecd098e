# shellcheck shell=bash
#
# Helpers that give scripts/test, scripts/run and .ci/run the local services they need:
# a throwaway PostgreSQL 15 cluster and a moto_server (DataSync API), each on a free
# loopback port, cleaned up on exit.
#
# Source this file from a bash script (`set -euo pipefail` friendly). The functions return
# non-zero with a message on stderr instead of exiting, so a caller can decide whether a
# missing service is fatal (scripts/test) or not (scripts/run).
#
#   ensure_postgres            PostgreSQL server binaries present (apt-get installs them); sets PG_BIN
#   start_postgres DIR [--keep]
#                              cluster in DIR on a free 127.0.0.1 port; exports PG_URL, PG_PORT;
#                              stops it on exit and removes DIR unless --keep
#   ensure_moto                moto[server] importable by python3 (pip installs it)
#   start_moto                 moto_server on a free 127.0.0.1 port; exports MOTO_ENDPOINT_URL
#   free_port                  prints a free loopback TCP port
#   svc_on_exit CMD            run CMD (eval'd) on exit, last registered first; composes with
#                              an EXIT trap set before the first call
#   svc_setup_path             puts ~/.cargo/bin on PATH if it exists
#   ensure_chromium            headless-capable Chromium (Debian's /usr/bin/chromium, apt-get
#                              installs it); exports CHROMIUM_PATH (kept if already executable)
#   ensure_node_clients        npm ci in tests/clients when node_modules is missing or older than
#                              package-lock.json (needs node >= 20 and npm); exports NODE_CLIENTS_DIR
#
# Environment knobs: SVC_VERBOSE=1 logs every step; SVC_TIMEOUT (seconds, default 60) bounds
# each wait for a service to come up.

SVC_LOG_PREFIX=${SVC_LOG_PREFIX:-$(basename -- "${0:-sh}")}
SVC_TIMEOUT=${SVC_TIMEOUT:-60}
SVC_PG_VERSION=${SVC_PG_VERSION:-15}
SVC_PG_USER=${SVC_PG_USER:-postgres}

svc_log() { printf '%s: %s\n' "$SVC_LOG_PREFIX" "$*" >&2; }
svc_debug() { if [[ ${SVC_VERBOSE:-0} != 0 ]]; then svc_log "$@"; fi; }

# Prints the last lines of a log file to stderr (used when a step fails).
svc_tail() {
    local file=$1
    if [[ -s $file ]]; then
        svc_log "--- last lines of $file ---"
        tail -n "${2:-30}" -- "$file" | sed "s/^/$SVC_LOG_PREFIX:   /" >&2
    fi
}

svc_setup_path() {
    local bin="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
    if [[ -d $bin && :$PATH: != *:"$bin":* ]]; then
        PATH="$bin:$PATH"
        export PATH
    fi
}

# ---------------------------------------------------------------------------------------------
# Exit handling: one EXIT trap runs every registered cleanup, newest first, then whatever EXIT
# trap was there before. INT/TERM/HUP become an ordinary exit (so the EXIT trap runs) unless the
# caller already trapped them. Register cleanups with svc_on_exit, not with `trap ... EXIT`.

_SVC_CLEANUPS=()
_SVC_PREV_EXIT_TRAP=
_SVC_TRAPS_SET=0

_svc_run_exit() {
    local rc=$? i
    set +e
    for ((i = ${#_SVC_CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${_SVC_CLEANUPS[i]}"
    done
    _SVC_CLEANUPS=()
    if [[ -n $_SVC_PREV_EXIT_TRAP ]]; then
        eval "$_SVC_PREV_EXIT_TRAP"
    fi
    exit "$rc"
}

svc_on_exit() {
    if [[ $_SVC_TRAPS_SET == 0 ]]; then
        local prev sig code
        prev=$(trap -p EXIT)
        if [[ -n $prev ]]; then
            # `trap -p` prints: trap -- 'CMD' EXIT ; recover CMD.
            eval "_svc_grab() { _SVC_PREV_EXIT_TRAP=\$2; }; _svc_grab ${prev#trap }"
            unset -f _svc_grab
        fi
        trap _svc_run_exit EXIT
        for sig in INT TERM HUP; do
            if [[ -z $(trap -p "$sig") ]]; then
                case $sig in INT) code=130 ;; TERM) code=143 ;; HUP) code=129 ;; esac
                # shellcheck disable=SC2064
                trap "exit $code" "$sig"
            fi
        done
        _SVC_TRAPS_SET=1
    fi
    _SVC_CLEANUPS+=("$1")
}

# ---------------------------------------------------------------------------------------------
# Small utilities

_svc_python() {
    if command -v python3 >/dev/null 2>&1; then
        echo python3
    elif [[ -x /usr/bin/python3 ]]; then
        echo /usr/bin/python3
    else
        return 1
    fi
}

free_port() {
    local py port i
    if py=$(_svc_python); then
        "$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' && return 0
    fi
    # Fallback without python: a random high port nobody answers on.
    for ((i = 0; i < 50; i++)); do
        port=$((20000 + RANDOM % 40000))
        if ! (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    svc_log "could not find a free loopback port"
    return 1
}

_svc_sudo() {
    if [[ $EUID == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        svc_log "need root to run: $*"
        return 1
    fi
}

_SVC_APT_UPDATED=0

# apt_install PKG... : non-interactive apt-get install, quiet unless it fails. Never starts the
# services the packages ship (a temporary policy-rc.d says no).
apt_install() {
    local log rc=0 policy=/usr/sbin/policy-rc.d added_policy=0
    if ! command -v apt-get >/dev/null 2>&1; then
        svc_log "apt-get not found; cannot install: $*"
        return 1
    fi
    log=$(mktemp "${TMPDIR:-/tmp}/svc-apt.XXXXXX") || return 1
    svc_log "installing Debian packages: $* (log: $log)"
    if [[ ! -e $policy ]]; then
        if printf '#!/bin/sh\nexit 101\n' | _svc_sudo tee "$policy" >/dev/null &&
            _svc_sudo chmod 755 "$policy"; then
            added_policy=1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    if [[ $_SVC_APT_UPDATED == 0 ]]; then
        _svc_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$log" 2>&1 || rc=$?
        [[ $rc == 0 ]] && _SVC_APT_UPDATED=1
    fi
    if [[ $rc == 0 ]]; then
        _svc_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
            "$@" >>"$log" 2>&1 || rc=$?
    fi
    if [[ $added_policy == 1 ]]; then
        _svc_sudo rm -f "$policy" || true
    fi
    if [[ $rc != 0 ]]; then
        svc_log "apt-get failed (exit $rc) installing: $*"
        svc_tail "$log"
        rm -f "$log"
        return "$rc"
    fi
    rm -f "$log"
    return 0
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

_svc_find_pg_bin() {
    local d best=
    if [[ -x /usr/lib/postgresql/$SVC_PG_VERSION/bin/initdb ]]; then
        echo "/usr/lib/postgresql/$SVC_PG_VERSION/bin"
        return 0
    fi
    # Any other Debian-packaged major version (newest wins).
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb && -x $d/pg_ctl ]] && best=$d
    done
    if [[ -n $best ]]; then
        echo "$best"
        return 0
    fi
    # Non-Debian layouts: initdb on PATH.
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname -- "$(command -v initdb)"
        return 0
    fi
    return 1
}

# Sets and exports PG_BIN (the directory holding initdb, pg_ctl, pg_isready, psql).
ensure_postgres() {
    if PG_BIN=$(_svc_find_pg_bin); then
        export PG_BIN
        svc_debug "postgres binaries: $PG_BIN"
        return 0
    fi
    apt_install "postgresql-$SVC_PG_VERSION" ||
        apt_install postgresql ||
        return 1
    if PG_BIN=$(_svc_find_pg_bin); then
        export PG_BIN
        return 0
    fi
    svc_log "postgres installed but initdb not found under /usr/lib/postgresql"
    return 1
}

# Runs a command as the cluster owner: the postgres user when we are root (initdb and postgres
# refuse to run as root), ourselves otherwise. Runs from / so that a cwd the user cannot read
# does not matter.
_svc_pg_as() {
    if [[ $EUID == 0 ]]; then
        (cd / && runuser -u "$SVC_PG_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

_svc_ensure_pg_user() {
    [[ $EUID == 0 ]] || return 0
    if ! id -u "$SVC_PG_USER" >/dev/null 2>&1; then
        svc_log "creating system user $SVC_PG_USER"
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$SVC_PG_USER" || return 1
    fi
}

# Stops whatever postmaster runs on the data directory (e.g. left over by a crashed run) and
# removes a stale postmaster.pid.
_svc_pg_stop_stale() {
    local data=$1 pid
    [[ -f $data/postmaster.pid ]] || return 0
    if _svc_pg_as "$PG_BIN/pg_ctl" status -D "$data" >/dev/null 2>&1; then
        svc_log "stopping a postgres left running on $data"
        _svc_pg_as "$PG_BIN/pg_ctl" stop -D "$data" -m fast -w -t 30 >/dev/null 2>&1 ||
            _svc_pg_as "$PG_BIN/pg_ctl" stop -D "$data" -m immediate -w -t 30 >/dev/null 2>&1 || true
    fi
    if [[ -f $data/postmaster.pid ]]; then
        pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
        if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
            [[ $(cat "/proc/$pid/comm" 2>/dev/null) == postgres* ]]; then
            svc_log "postgres pid $pid still holds $data; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
        fi
        svc_debug "removing stale $data/postmaster.pid"
        rm -f "$data/postmaster.pid"
    fi
}

_svc_pg_initdb() {
    local data=$1 log=$2
    rm -rf "$data"
    _svc_pg_as mkdir -p "$data" || return 1
    chmod 700 "$data" || return 1
    if ! _svc_pg_as "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 \
        --locale=C --no-sync >>"$log" 2>&1; then
        svc_log "initdb failed in $data"
        svc_tail "$log"
        return 1
    fi
}

# start_postgres DIR [--keep]
#   DIR/data is the cluster, DIR/run the unix socket directory, DIR/postgres.log the server log.
#   An existing DIR/data of the same major version is reused (after clearing any stale
#   postmaster.pid); anything unusable is re-initialised. Without --keep, DIR is removed on exit.
start_postgres() {
    local dir=${1:?start_postgres needs a directory} keep=0 data run log port attempt started=0
    [[ ${2:-} == --keep ]] && keep=1
    if [[ -z ${PG_BIN:-} ]]; then
        ensure_postgres || return 1
    fi
    _svc_ensure_pg_user || return 1

    mkdir -p "$dir" || return 1
    dir=$(cd "$dir" && pwd -P) || return 1
    data=$dir/data run=$dir/run log=$dir/postgres.log
    if [[ $EUID == 0 ]]; then
        chown -R "$SVC_PG_USER:" "$dir" || return 1
        if ! _svc_pg_as test -w "$dir" -a -x "$dir"; then
            svc_log "user $SVC_PG_USER cannot write $dir (is a parent directory closed to it?)"
            return 1
        fi
    fi
    _svc_pg_as mkdir -p "$run" || return 1
    chmod 700 "$run" 2>/dev/null || true
    : >"$log" || return 1
    [[ $EUID == 0 ]] && chown "$SVC_PG_USER:" "$log"

    # Cleanup first, so that a failure half-way still stops/removes what was made.
    if [[ $keep == 1 ]]; then
        svc_on_exit "_svc_pg_stop $(printf %q "$data") fast"
    else
        svc_on_exit "_svc_pg_stop $(printf %q "$data") immediate; rm -rf -- $(printf %q "$dir")"
    fi

    _svc_pg_stop_stale "$data"
    if [[ -f $data/PG_VERSION ]]; then
        local have want
        have=$(cat "$data/PG_VERSION")
        want=$("$PG_BIN/postgres" -V | awk '{print $3}' | cut -d. -f1)
        if [[ $have != "$want" ]]; then
            svc_log "$data is a PostgreSQL $have cluster, binaries are $want: re-initialising"
            _svc_pg_initdb "$data" "$log" || return 1
        else
            svc_debug "reusing cluster in $data"
        fi
    else
        _svc_pg_initdb "$data" "$log" || return 1
    fi

    # Loopback only, trust auth (the cluster is throwaway and only reachable from this machine).
    printf '%s\n' \
        'local all all trust' \
        'host  all all 127.0.0.1/32 trust' | _svc_pg_as tee "$data/pg_hba.conf" >/dev/null || return 1

    for attempt in 1 2 3 4; do
        port=$(free_port) || return 1
        : >"$log"
        if _svc_pg_as "$PG_BIN/pg_ctl" start -D "$data" -l "$log" -w -t "$SVC_TIMEOUT" -o \
            "-c listen_addresses=127.0.0.1 -p $port -k '$run' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
            >/dev/null 2>&1; then
            started=1
            break
        fi
        if grep -qiE 'could not (bind|create listen)|address already in use' "$log"; then
            svc_debug "port $port taken, retrying"
            continue
        fi
        if [[ $attempt == 1 && -f $data/PG_VERSION ]]; then
            # A reused cluster that will not start (damaged by a crash, ...): it is throwaway.
            svc_log "postgres did not start on the existing cluster in $data; re-initialising"
            svc_tail "$log" 10
            _svc_pg_stop_stale "$data"
            _svc_pg_initdb "$data" "$log" || return 1
            continue
        fi
        break
    done
    if [[ $started != 1 ]]; then
        svc_log "postgres failed to start in $data"
        svc_tail "$log"
        return 1
    fi

    local deadline=$((SECONDS + SVC_TIMEOUT))
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; do
        if ((SECONDS >= deadline)); then
            svc_log "postgres on 127.0.0.1:$port did not accept connections within ${SVC_TIMEOUT}s"
            svc_tail "$log"
            return 1
        fi
        sleep 0.1
    done
    PG_PORT=$port
    PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export PG_PORT PG_URL
    svc_debug "postgres ready: $PG_URL (data $data)"
}

_svc_pg_stop() {
    local data=$1 mode=${2:-fast} pid
    [[ -f $data/postmaster.pid ]] || return 0
    _svc_pg_as "$PG_BIN/pg_ctl" stop -D "$data" -m "$mode" -w -t 30 >/dev/null 2>&1 && return 0
    pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]]; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
}

# ---------------------------------------------------------------------------------------------
# moto (DataSync API server)

_svc_moto_importable() {
    "$1" -c 'import moto.server, flask, flask_cors, werkzeug' >/dev/null 2>&1
}

# Sets and exports MOTO_PYTHON (the interpreter that runs `-m moto.server`, i.e. moto_server).
ensure_moto() {
    local py log rc=0
    py=$(_svc_python) || {
        apt_install python3 python3-pip || return 1
        py=$(_svc_python) || return 1
    }
    if _svc_moto_importable "$py"; then
        MOTO_PYTHON=$py
        export MOTO_PYTHON
        return 0
    fi
    if ! "$py" -m pip --version >/dev/null 2>&1; then
        apt_install python3-pip || return 1
    fi
    log=$(mktemp "${TMPDIR:-/tmp}/svc-pip.XXXXXX") || return 1
    svc_log "installing moto[server] with pip (log: $log)"
    "$py" -m pip install --quiet --disable-pip-version-check 'moto[server]' >>"$log" 2>&1 || rc=$?
    if [[ $rc != 0 ]]; then
        # Debian's system python is "externally managed" (PEP 668).
        rc=0
        "$py" -m pip install --quiet --disable-pip-version-check --break-system-packages \
            'moto[server]' >>"$log" 2>&1 || rc=$?
    fi
    if [[ $rc != 0 ]] || ! _svc_moto_importable "$py"; then
        svc_log "could not install moto[server] for $py"
        svc_tail "$log"
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
    hash -r
    MOTO_PYTHON=$py
    export MOTO_PYTHON
}

# Starts moto_server (as `python3 -m moto.server`, which is what the moto_server entry point
# runs; this also works when pip's script directory is not on PATH) on a free loopback port.
start_moto() {
    local dir port pid attempt
    if [[ -z ${MOTO_PYTHON:-} ]]; then
        ensure_moto || return 1
    fi
    dir=$(mktemp -d "${TMPDIR:-/tmp}/svc-moto.XXXXXX") || return 1
    svc_on_exit "rm -rf -- $(printf %q "$dir")"
    for attempt in 1 2 3; do
        port=$(free_port) || return 1
        "$MOTO_PYTHON" -m moto.server -H 127.0.0.1 -p "$port" </dev/null >"$dir/moto.log" 2>&1 &
        pid=$!
        svc_on_exit "_svc_kill $pid"
        if _svc_wait_http "http://127.0.0.1:$port/moto-api/" "$pid"; then
            MOTO_PORT=$port
            MOTO_ENDPOINT_URL="http://127.0.0.1:$port"
            export MOTO_PORT MOTO_ENDPOINT_URL
            svc_debug "moto ready: $MOTO_ENDPOINT_URL (pid $pid)"
            return 0
        fi
        _svc_kill "$pid"
        if ! grep -qi 'address already in use' "$dir/moto.log"; then
            break
        fi
    done
    svc_log "moto_server failed to start"
    svc_tail "$dir/moto.log"
    return 1
}

# _svc_wait_http URL PID : waits until URL answers any HTTP status, while PID is alive.
_svc_wait_http() {
    local url=$1 pid=$2
    "$MOTO_PYTHON" - "$url" "$pid" "$SVC_TIMEOUT" <<'PY'
import os, sys, time, urllib.request, urllib.error
url, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)
    try:
        urllib.request.urlopen(url, timeout=2).read()
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except Exception:
        time.sleep(0.05)
sys.exit(1)
PY
}

_svc_kill() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# Real clients for the end-to-end tests: headless Chromium and the npm project in tests/clients

# Sets and exports CHROMIUM_PATH: $CHROMIUM_PATH if it is already an executable, else Debian's
# /usr/bin/chromium (apt-get installs it, with fonts-liberation so that screenshots have text).
# Browsers are never downloaded any other way.
ensure_chromium() {
    if [[ -n ${CHROMIUM_PATH:-} && -x $CHROMIUM_PATH ]]; then
        export CHROMIUM_PATH
        return 0
    fi
    if [[ ! -x /usr/bin/chromium ]]; then
        apt_install chromium fonts-liberation || return 1
    fi
    if [[ -x /usr/bin/chromium ]]; then
        CHROMIUM_PATH=/usr/bin/chromium
        export CHROMIUM_PATH
        svc_debug "chromium: $CHROMIUM_PATH"
        return 0
    fi
    svc_log "chromium installed but /usr/bin/chromium not found"
    return 1
}

# Sets and exports NODE_CLIENTS_DIR (absolute path of tests/clients) after running
# `npm ci --no-audit --no-fund` there when node_modules is missing or older than
# package-lock.json (npm's own node_modules/.package-lock.json marks when it last installed).
# Needs node (>= 20) and npm on PATH; installs neither.
ensure_node_clients() {
    local dir log rc=0 major
    dir=$(cd "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)/tests/clients || return 1
    if [[ ! -f $dir/package-lock.json ]]; then
        svc_log "no package-lock.json in $dir"
        return 1
    fi
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        svc_log "node and npm are needed for the client tests in $dir"
        return 1
    fi
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || major=0
    if ((major < 20)); then
        svc_log "node >= 20 is needed for the client tests in $dir (found $(node --version 2>&1))"
        return 1
    fi
    if [[ ! -f $dir/node_modules/.package-lock.json ||
        $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
        log=$(mktemp "${TMPDIR:-/tmp}/svc-npm.XXXXXX") || return 1
        svc_log "installing the npm clients in $dir (npm ci; log: $log)"
        (cd "$dir" && npm ci --no-audit --no-fund) >>"$log" 2>&1 || rc=$?
        if [[ $rc != 0 ]]; then
            svc_log "npm ci failed (exit $rc) in $dir"
            svc_tail "$log"
            rm -f "$log"
            return 1
        fi
        rm -f "$log"
    fi
    NODE_CLIENTS_DIR=$dir
    export NODE_CLIENTS_DIR
    svc_debug "node clients: $NODE_CLIENTS_DIR"
}
