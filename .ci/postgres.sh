#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for the store tests and prints the lines
# that point them at it, for .ci/run to eval:
#
#	eval "$(bash .ci/postgres.sh)"
#
# Idempotent: a server this script started that still answers is reused;
# otherwise its directory is wiped and a new cluster is made, so a stale
# pid file or a half-made cluster from an earlier run never gets in the way.
# Installs Debian's postgresql package if no server binaries are found.
# Must run as root (it runs the server as the postgres user).
#
# HERALD_PG_DIR overrides where the cluster lives (default /tmp/herald-postgres).
set -euo pipefail

# Everything but the final export lines goes to stderr: stdout is eval'd.
exec 3>&1 1>&2

dir=${HERALD_PG_DIR:-/tmp/herald-postgres}
data=$dir/data

bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
		echo "$d"
	fi
}

bin=$(bindir)
if [ -z "$bin" ]; then
	echo "postgres.sh: installing PostgreSQL from Debian's packages"
	# The package would otherwise create and start its own cluster on
	# port 5432, which the tests do not use and which may clash.
	mkdir -p /etc/postgresql-common/createcluster.d
	echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/herald-no-main.conf
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq postgresql >/dev/null
	bin=$(bindir)
	if [ -z "$bin" ]; then
		echo "postgres.sh: no initdb under /usr/lib/postgresql/*/bin after installing" >&2
		exit 1
	fi
fi

as_pg() { (cd / && runuser -u postgres -- "$@"); }

dsn() { echo "postgres://herald@127.0.0.1:$1/herald_test?sslmode=disable"; }

# What the restart test (server.TestPostgresRestart) runs, as the postgres
# user, to stop and start this server: pg_ctl with its data directory and
# log. Words are split on spaces, so the paths must not contain any.
exports() {
	echo "export HERALD_TEST_POSTGRES='$(dsn "$1")'"
	echo "export HERALD_TEST_PG_CTL='$bin/pg_ctl -D $data -l $dir/server.log'"
}

# pin_config writes the settings the server was started with into its
# configuration, so that a plain pg_ctl start (the restart test stops the
# server and starts it again) brings it back where the tests look for it.
# A server started by an older version of this script lacks them.
pin_config() {
	grep -q "^port = $1\$" "$data/postgresql.conf" && return
	cat >>"$data/postgresql.conf" <<CONF
port = $1
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 300
CONF
}

# Reuse a server from an earlier run if it is still up.
if [ -f "$dir/port" ] && [ -f "$data/postmaster.pid" ]; then
	port=$(cat "$dir/port")
	if as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1 &&
		as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U herald -d herald_test -Atqc 'SELECT 1' >/dev/null 2>&1; then
		echo "postgres.sh: reusing the server on port $port"
		pin_config "$port"
		exports "$port" >&3
		exit 0
	fi
	# A server of ours that does not answer: stop it if it still runs.
	as_pg "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
fi

rm -rf "$dir"
mkdir -p "$dir"
chown postgres:postgres "$dir"
chmod 700 "$dir"
# trust on loopback only: a throwaway cluster for tests, reachable from
# this machine alone.
as_pg "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
	cat "$dir/initdb.log"
	exit 1
}

# A port nobody listens on: bash's /dev/tcp connect fails on a free port.
port_free() { ! (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

started=
for try in $(seq 1 20); do
	port=$((20000 + (RANDOM % 20000)))
	port_free "$port" || continue
	# -w waits until the server accepts connections. Stdout and stderr of
	# the server go to its log, so the caller's $(...) does not wait on it
	# (fd 3, the caller's pipe, is closed for it too).
	if as_pg "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
		-o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c max_connections=300" \
		start >/dev/null 3>&-; then
		started=1
		break
	fi
	# Lost a race for the port, most likely; try another.
	tail -n 5 "$dir/server.log" || true
done
if [ -z "$started" ]; then
	echo "postgres.sh: the server did not start; log:" >&2
	cat "$dir/server.log" >&2 || true
	exit 1
fi
echo "$port" >"$dir/port"
pin_config "$port"

as_pg "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -Atq <<'SQL'
CREATE ROLE herald LOGIN CREATEDB;
CREATE DATABASE herald_test OWNER herald;
SQL

echo "postgres.sh: PostgreSQL ($(basename "$(dirname "$bin")")) on 127.0.0.1:$port, data in $data"
exports "$port" >&3
