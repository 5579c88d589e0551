#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for trio_graph's tests and benchmarks.
#
#   eval "$(scripts/postgres.sh)"          # start; exports TRIO_GRAPH_PG_DSN, TRIO_GRAPH_PG_DIR
#   scripts/postgres.sh stop [DIR]         # stop the cluster in DIR (default $TRIO_GRAPH_PG_DIR)
#                                          # and remove DIR
#
# Installs Debian's `postgresql` package if no server binaries are found (needs root
# and apt-get), creates a cluster with initdb under a temp dir, and starts it with
# pg_ctl on a free loopback port (TRIO_GRAPH_PG_PORT to choose one). When run as root
# the server runs as the `postgres` user (PostgreSQL refuses to run as root).
# Only the `export` lines go to stdout; progress goes to stderr.
set -euo pipefail

say() { echo "postgres.sh: $*" >&2; }

find_bindir() {
    local d
    if command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir 2>/dev/null || true)"
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
    fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
    done
    return 1
}

as_owner() {
    # Run a command as the cluster's owner: `postgres` when we are root, else ourselves.
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

if [ "${1:-}" = stop ]; then
    dir="${2:-${TRIO_GRAPH_PG_DIR:-}}"
    [ -n "$dir" ] || { say "stop: no directory given and TRIO_GRAPH_PG_DIR unset"; exit 2; }
    bindir="$(find_bindir)"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >&2
    case "$dir" in */trio_graph_pg.*) rm -rf "$dir" ;; esac
    exit 0
fi

if ! bindir="$(find_bindir)"; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        say "no PostgreSQL server found and cannot install it (needs root and apt-get)"
        exit 1
    fi
    say "installing postgresql with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y postgresql >&2
    bindir="$(find_bindir)"
fi

port="${TRIO_GRAPH_PG_PORT:-}"
if [ -z "$port" ]; then
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/trio_graph_pg.XXXXXX")"
chmod 755 "$dir"
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" postgres
    chown postgres: "$dir"
fi

say "initdb in $dir/data ($bindir)"
as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
    --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }

say "starting on 127.0.0.1:$port"
as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" \
    start >&2 || { cat "$dir/server.log" >&2; exit 1; }

as_owner "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -q \
    -c "CREATE DATABASE trio_graph" >&2

echo "export TRIO_GRAPH_PG_DSN='postgresql://postgres@127.0.0.1:$port/trio_graph'"
echo "export TRIO_GRAPH_PG_DIR='$dir'"
say "ready: postgresql://postgres@127.0.0.1:$port/trio_graph (stop: scripts/postgres.sh stop $dir)"
