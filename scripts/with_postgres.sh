#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL server, for the tests that need a real one (the registry's
# PostgreSQL backend, the Dagster instance on PostgreSQL): a fresh cluster in a temporary folder on a free
# localhost port, exported as FINE_TUNE_TEST_POSTGRES_URL, stopped and deleted when the command ends.
#
#   scripts/with_postgres.sh .venv/bin/python -m pytest fine_tune_assets_tests
#
# Without PostgreSQL's server binaries the command runs anyway and those tests skip (under CI=true they
# fail instead). A FINE_TUNE_TEST_POSTGRES_URL already set is used as it is. As root (CI), the server runs
# as the `postgres` user: PostgreSQL refuses to run as root.
set -euo pipefail

if [[ -n "${FINE_TUNE_TEST_POSTGRES_URL:-}" ]]; then
  exec "$@"
fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
  echo "with_postgres: no PostgreSQL server binaries (apt-get install postgresql); PostgreSQL tests will skip" >&2
  exec "$@"
fi

dir=$(mktemp -d /tmp/fine_tune_pg.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_server() { if [[ $(id -u) -eq 0 ]]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
[[ $(id -u) -eq 0 ]] && chown postgres "$dir"

stop() {
  as_server "'$bindir/pg_ctl' -D '$dir/data' -m fast -w stop" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

as_server "'$bindir/initdb' -D '$dir/data' -A trust -U fine_tune -E UTF8 --locale=C.UTF-8" >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
as_server "'$bindir/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w \
  -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off\" start" >/dev/null \
  || { cat "$dir/server.log" >&2; exit 1; }
as_server "'$bindir/createdb' -h 127.0.0.1 -p $port -U fine_tune fine_tune_test"
echo "with_postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2

export FINE_TUNE_TEST_POSTGRES_URL="postgresql://fine_tune@127.0.0.1:$port/fine_tune_test"
"$@"
