# Throwaway PostgreSQL and Redis servers on 127.0.0.1 for the tests that need them.
#
#   source .ci/services.sh && start_services    # exports E6_TEST_POSTGRES_URL and E6_TEST_REDIS_URL
#   stop_services                               # stops both and deletes their files
#
# The servers come from Debian's `postgresql` and `redis-server` packages (installed here when
# missing, as root) but run as private instances in a temporary folder, on free ports, listening on
# 127.0.0.1 only: the system services and their data are not used or touched.

E6_SERVICES_DIR=""
E6_PG_BIN=""

_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_as_pg_owner() {  # initdb and postgres refuse to run as root
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_services() {
    local missing=()
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
    command -v redis-server >/dev/null || missing+=(redis-server)
    if [ "${#missing[@]}" -gt 0 ]; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
}

start_services() {
    install_services
    E6_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    E6_SERVICES_DIR=$(mktemp -d /tmp/e6-services.XXXXXX)
    chmod 755 "$E6_SERVICES_DIR"
    local pg="$E6_SERVICES_DIR/postgres" password pg_port redis_port
    password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
    mkdir "$pg" && printf '%s\n' "$password" >"$pg.pw"
    [ "$(id -u)" = 0 ] && chown postgres "$pg" "$pg.pw"
    _as_pg_owner "$E6_PG_BIN/initdb" -D "$pg/data" -U e6 --pwfile="$pg.pw" --auth=scram-sha-256 \
        -E UTF8 --no-locale >"$pg/initdb.log"
    pg_port=$(_free_port)
    _as_pg_owner "$E6_PG_BIN/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w start \
        -o "-h 127.0.0.1 -p $pg_port -k $pg -c max_connections=200 -c fsync=off" >/dev/null
    export E6_TEST_POSTGRES_URL="postgresql://e6:$password@127.0.0.1:$pg_port/postgres"

    redis_port=$(_free_port)
    redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
        --dir "$E6_SERVICES_DIR" --daemonize yes --pidfile "$E6_SERVICES_DIR/redis.pid" \
        --logfile "$E6_SERVICES_DIR/redis.log"
    for _ in $(seq 50); do
        redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    export E6_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
    echo "services: PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port"
}

stop_services() {
    [ -n "$E6_SERVICES_DIR" ] || return 0
    if [ -f "$E6_SERVICES_DIR/redis.pid" ]; then
        kill "$(cat "$E6_SERVICES_DIR/redis.pid")" 2>/dev/null || true
    fi
    _as_pg_owner "$E6_PG_BIN/pg_ctl" -D "$E6_SERVICES_DIR/postgres/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$E6_SERVICES_DIR"
    E6_SERVICES_DIR=""
}
