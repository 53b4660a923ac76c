#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and the bench, from Debian's
# packages (apt-get install -y postgresql; tests/prereqs.sh installs it).
#   tests/postgres/cluster.sh start DIR PORT [throwaway]
#       prints the admin connection string; `throwaway` turns fsync off
#       (the test suite's cluster, whose data dies with the run; the bench
#       keeps PostgreSQL's shipped durability)
#   tests/postgres/cluster.sh stop DIR
# The socket lives in DIR; nothing listens on TCP. initdb refuses to run as
# root, so as root the cluster belongs to the `postgres` user.
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?directory}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "PostgreSQL is not installed (apt-get install -y postgresql)" >&2; exit 1; }
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case $cmd in
start)
  port=${3:?port}
  extra=""
  if [ "${4:-}" = throwaway ]; then
    extra="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  fi
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  chmod 0700 "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  # A socket only, in DIR.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses='' -c max_connections=300 $extra" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  echo "host=$dir port=$port user=postgres dbname=postgres"
  ;;
stop)
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  ;;
*) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
