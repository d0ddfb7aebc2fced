#!/usr/bin/env bash
# Brings the whole Basalt stack up on this machine (Debian 12): system packages, PostgreSQL,
# RabbitMQ, the build, the database schema, then the four services in the background.
#
#   ./stack.sh          everything, then prints where the logs are
#   ./stack.sh deps     only the system packages and the broker and database (what `npm test` needs)
#   ./stack.sh stop     stops the four services
#   ./stack.sh status   the services table
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
STATE=${BASALT_STACK_DIR:-$ROOT/.stack}
PACKAGES=(
  postgresql rabbitmq-server
  tgt libiscsi-bin qemu-utils qemu-block-extra lvm2
  python3-oslo.messaging python3-cinderclient python3-openstackclient
)
SERVICES=(api scheduler volume-worker compute-worker)

say() { printf '==> %s\n' "$*"; }

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start_postgres() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    say "starting PostgreSQL"
    local version; version=$(ls /etc/postgresql | sort -V | tail -1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  fi
  # a fresh Debian cluster asks for a password over TCP; a development stack trusts loopback
  if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
    local version hba; version=$(ls /etc/postgresql | sort -V | tail -1); hba=/etc/postgresql/$version/main/pg_hba.conf
    say "trusting postgres on 127.0.0.1 in $hba"
    sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
  psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null
}

start_rabbitmq() {
  if ! rabbitmqctl -q status >/dev/null 2>&1; then
    say "starting RabbitMQ"
    rabbitmq-server -detached
    for _ in $(seq 120); do rabbitmqctl -q status >/dev/null 2>&1 && break; sleep 1; done
  fi
  # an interrupted broker-restart test may have left the app stopped
  rabbitmqctl -q start_app >/dev/null 2>&1 || true
  rabbitmqctl -q await_startup --timeout 120
}

deps() {
  install_packages
  start_postgres
  start_rabbitmq
}

write_config() {
  mkdir -p "$STATE/logs"
  [ -f "$STATE/basalt.conf" ] && return
  cat >"$STATE/basalt.conf" <<CONF
[DEFAULT]
host = $(hostname -s | tr -c 'A-Za-z0-9_.\n-' '-')

[database]
connection = postgres://postgres@127.0.0.1:5432/basalt

[rabbit]
transport_url = amqp://guest:guest@127.0.0.1:5672/
CONF
}

start_services() {
  export BASALT_CONFIG=$STATE/basalt.conf
  node libs/cli/dist/main.js db migrate
  for s in "${SERVICES[@]}"; do
    local pidfile=$STATE/$s.pid
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then continue; fi
    nohup node "services/$s/dist/main.js" >>"$STATE/logs/$s.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
  done
  for s in "${SERVICES[@]}"; do
    for _ in $(seq 100); do grep -q '"msg":"basalt-[a-z]* started"' "$STATE/logs/$s.log" 2>/dev/null && break; sleep 0.2; done
    grep -q '"msg":"basalt-[a-z]* started"' "$STATE/logs/$s.log" || { echo "$s did not start; see $STATE/logs/$s.log" >&2; exit 1; }
  done
}

stop_services() {
  for s in "${SERVICES[@]}"; do
    local pidfile=$STATE/$s.pid
    [ -f "$pidfile" ] || continue
    kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

case "${1:-up}" in
  deps) deps ;;
  stop) stop_services ;;
  status) BASALT_CONFIG=$STATE/basalt.conf node libs/cli/dist/main.js service list ;;
  up)
    deps
    [ -d node_modules ] || npm ci --no-audit --no-fund
    npm run build
    write_config
    start_services
    say "Basalt is up. Config: $STATE/basalt.conf"
    say "Logs: $STATE/logs/{api,scheduler,volume-worker,compute-worker}.log"
    say "Services: BASALT_CONFIG=$STATE/basalt.conf npx basalt service list    Stop: ./stack.sh stop"
    ;;
  *) echo "usage: $0 [up|deps|stop|status]" >&2; exit 2 ;;
esac
