#!/usr/bin/env bash
# Makes sure the local services Marquee needs are up on loopback:
# PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379. Installs them from
# Debian's packages when missing, starts them when down, and does nothing when
# they already answer. --with-stripe-mock also starts Stripe's stripe-mock on
# 127.0.0.1:12111 (the demo's test-mode payments). --for-tests also provides what the tests need beyond
# those: Stripe's stripe-mock on 127.0.0.1:12111, Debian's chromium, and a second
# PostgreSQL cluster on 127.0.0.1:5433 (--with-second-postgres alone: the tenant
# placement and move tests, or a local fleet spread over two servers).
# --with-pg-stat-statements makes the main cluster load pg_stat_statements
# (restarting it once if it did not; a cluster this script installs has it).
# --with-mailpit installs and starts mailpit, an SMTP catcher with a web inbox
# (SMTP 127.0.0.1:1025, inbox http://127.0.0.1:8025): run the server or demo
# with MARQUEE_SMTP_URL='smtp://127.0.0.1:1025?tls=none' to read its mail there.
# Without it, `demo` and the tests start an in-process catcher of their own.
# --for-tests also raises PostgreSQL's max_connections to 300 (one restart
# if lower), installs poppler-utils (pdftoppm: ticket PDFs to PNG) and
# makes sure redis-server and redis-cli are installed (the Redis Cluster tests
# start their own three nodes on 127.0.0.1:7101-7103).
set -euo pipefail

PG_PORT=5432
REDIS_PORT=6379

say() { printf 'services: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root to run: $*"; exit 1; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # port name
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  say "$2 did not come up on 127.0.0.1:$1"; exit 1
}

ensure_postgres() {
  if port_open "$PG_PORT"; then return; fi
  local installed=0
  if ! command -v pg_ctlcluster >/dev/null; then
    say "installing PostgreSQL"
    apt_install postgresql
    installed=1
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ -z "$version" ]; then say "no PostgreSQL cluster found under /etc/postgresql"; exit 1; fi
  say "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_for "$PG_PORT" PostgreSQL
  if [ "$installed" -eq 1 ]; then
    # A fresh Debian cluster asks for a password on TCP; give the superuser the
    # one in the default MARQUEE_DATABASE_URL (local development only).
    as_root runuser -u postgres -- psql -qc "ALTER USER postgres PASSWORD 'postgres'"
    # A cluster this script creates loads pg_stat_statements, so bench
    # onsale's purchase phase can list the statements that took the time.
    enable_pg_stat_statements "$version"
  fi
}

# enable_pg_stat_statements makes the main cluster load pg_stat_statements
# (shared_preload_libraries) and restarts it if it did not already: a restart
# drops every connection, so an existing cluster gets it only when asked
# (--with-pg-stat-statements).
enable_pg_stat_statements() {
  local version="$1" loaded
  loaded=$(as_root runuser -u postgres -- psql -p "$PG_PORT" -tAc "SHOW shared_preload_libraries")
  case "$loaded" in *pg_stat_statements*) return ;; esac
  say "loading pg_stat_statements (restarts PostgreSQL $version)"
  as_root runuser -u postgres -- psql -p "$PG_PORT" -qc \
    "ALTER SYSTEM SET shared_preload_libraries = '${loaded:+$loaded,}pg_stat_statements'"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main restart
  wait_for "$PG_PORT" PostgreSQL
}

# ensure_max_connections raises the main cluster's max_connections to at
# least TEST_MAX_CONNECTIONS (restarting it once if lower): the test packages
# run two at a time, each app with a pool of up to 40, plus helpers' own
# connections and benches; Debian's default of 100 ran out ("too many
# clients already") when a bench ran beside the suite.
TEST_MAX_CONNECTIONS=300
ensure_max_connections() {
  local version current
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  current=$(as_root runuser -u postgres -- psql -p "$PG_PORT" -tAc "SHOW max_connections")
  if [ "$current" -ge "$TEST_MAX_CONNECTIONS" ]; then return; fi
  say "raising max_connections from $current to $TEST_MAX_CONNECTIONS (restarts PostgreSQL $version)"
  as_root runuser -u postgres -- psql -p "$PG_PORT" -qc "ALTER SYSTEM SET max_connections = $TEST_MAX_CONNECTIONS"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main restart
  wait_for "$PG_PORT" PostgreSQL
}

PG_SECOND_PORT=5433

# ensure_postgres_second creates (once) and starts a second cluster of the
# main cluster's version, named "second", on PG_SECOND_PORT, with the main
# cluster's client authentication and the default URL's superuser password, so
# one URL shape reaches both: postgres://postgres:postgres@127.0.0.1:5433/…
ensure_postgres_second() {
  if port_open "$PG_SECOND_PORT"; then return; fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$version second"; then
    say "creating PostgreSQL $version cluster \"second\" on port $PG_SECOND_PORT"
    as_root pg_createcluster "$version" second --port "$PG_SECOND_PORT" >/dev/null
    as_root cp "/etc/postgresql/$version/main/pg_hba.conf" "/etc/postgresql/$version/second/pg_hba.conf"
  fi
  say "starting PostgreSQL $version cluster \"second\""
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" second start
  wait_for "$PG_SECOND_PORT" "PostgreSQL (second cluster)"
  as_root runuser -u postgres -- psql -p "$PG_SECOND_PORT" -qc "ALTER USER postgres PASSWORD 'postgres'"
}

ensure_redis() {
  if port_open "$REDIS_PORT"; then return; fi
  if ! command -v redis-server >/dev/null; then
    say "installing Redis"
    apt_install redis-server
  fi
  say "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/marquee.log
  wait_for "$REDIS_PORT" Redis
}

# ensure_redis_binaries makes sure redis-server and redis-cli are installed
# even when the Redis on $REDIS_PORT runs elsewhere (a container): the Redis
# Cluster tests start three cluster-mode nodes of their own on 7101-7103.
ensure_redis_binaries() {
  if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then return; fi
  say "installing redis-server and redis-cli (the Redis Cluster tests)"
  apt_install redis-server redis-tools
}

STRIPE_MOCK_VERSION=v0.203.0
STRIPE_MOCK_PORT=12111

ensure_stripe_mock() {
  if port_open "$STRIPE_MOCK_PORT"; then return; fi
  local bin
  bin="$(go env GOPATH)/bin/stripe-mock"
  if [ ! -x "$bin" ]; then
    say "installing stripe-mock $STRIPE_MOCK_VERSION"
    GOFLAGS= go install "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION"
  fi
  say "starting stripe-mock"
  mkdir -p "${TMPDIR:-/tmp}/marquee-services"
  nohup "$bin" -http-addr "127.0.0.1:$STRIPE_MOCK_PORT" -https-addr "127.0.0.1:$((STRIPE_MOCK_PORT + 1))" \
    >"${TMPDIR:-/tmp}/marquee-services/stripe-mock.log" 2>&1 &
  wait_for "$STRIPE_MOCK_PORT" stripe-mock
}

MAILPIT_VERSION=v1.33.1
MAILPIT_SMTP_PORT=1025
MAILPIT_UI_PORT=8025

ensure_mailpit() {
  if port_open "$MAILPIT_SMTP_PORT"; then return; fi
  local bin
  bin="$(go env GOPATH)/bin/mailpit"
  if [ ! -x "$bin" ]; then
    say "installing mailpit $MAILPIT_VERSION (a few minutes: it is compiled)"
    GOFLAGS= go install "github.com/axllent/mailpit@$MAILPIT_VERSION"
  fi
  say "starting mailpit"
  mkdir -p "${TMPDIR:-/tmp}/marquee-services"
  nohup "$bin" --smtp "127.0.0.1:$MAILPIT_SMTP_PORT" --listen "127.0.0.1:$MAILPIT_UI_PORT" --smtp-auth-accept-any --smtp-auth-allow-insecure \
    >"${TMPDIR:-/tmp}/marquee-services/mailpit.log" 2>&1 &
  wait_for "$MAILPIT_SMTP_PORT" mailpit
  say "mail: MARQUEE_SMTP_URL='smtp://127.0.0.1:$MAILPIT_SMTP_PORT?tls=none', inbox http://127.0.0.1:$MAILPIT_UI_PORT"
}

ensure_pdftoppm() {
  if command -v pdftoppm >/dev/null; then return; fi
  say "installing poppler-utils (ticket PDFs to PNG)"
  apt_install poppler-utils
}

ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then return; fi
  say "installing chromium (browser tests)"
  apt_install chromium
}

ensure_postgres
ensure_redis
for arg in "$@"; do
  case "$arg" in
    --with-chromium) ensure_chromium ;;
    --with-stripe-mock) ensure_stripe_mock ;;
    --with-second-postgres) ensure_postgres_second ;;
    --with-pg-stat-statements) enable_pg_stat_statements "$(ls /etc/postgresql | sort -V | tail -n 1)" ;;
    --with-mailpit) ensure_mailpit ;;
    --for-tests) ensure_max_connections; ensure_stripe_mock; ensure_chromium; ensure_postgres_second; ensure_pdftoppm; ensure_redis_binaries ;;
    *) say "unknown option $arg"; exit 2 ;;
  esac
done
extra=""
if port_open "$PG_SECOND_PORT"; then extra=" (second PostgreSQL on 127.0.0.1:$PG_SECOND_PORT)"; fi
say "PostgreSQL 127.0.0.1:$PG_PORT and Redis 127.0.0.1:$REDIS_PORT are up$extra"
