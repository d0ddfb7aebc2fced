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
TGT_CONTROL=${BASALT_TGT_CONTROL:-0}
TGT_PORT=${BASALT_TGT_PORT:-3260}

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
  mkdir -p "$STATE/logs" "$STATE/volumes" "$STATE/tgt"
  if [ -f "$STATE/basalt.conf" ]; then
    # a config written before CHAP secrets were sealed: [volume] is its last section
    grep -q '^secret_keys' "$STATE/basalt.conf" ||
      echo "secret_keys = k1:$(head -c 32 /dev/urandom | base64)" >>"$STATE/basalt.conf"
    return
  fi
  # the file backend: this kind of machine has no device-mapper, so LVM volumes could not be served
  # (set volume_driver = lvm on a host with a nova-volumes volume group)
  cat >"$STATE/basalt.conf" <<CONF
[DEFAULT]
host = $(hostname -s | tr -c 'A-Za-z0-9_.\n-' '-')

[database]
connection = postgres://postgres@127.0.0.1:5432/basalt

[rabbit]
transport_url = amqp://guest:guest@127.0.0.1:5672/

[api]
# development mode: X-Auth-Token user:project, the caller is admin of that project
auth_strategy = noauth

[identity]
token_secret = $(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
users = admin:admin:admin:admin,demo:demo:demo:member

[volume]
volume_driver = file
volumes_path = $STATE/volumes
volumes_dir = $STATE/tgt
iscsi_ip_address = 127.0.0.1
iscsi_port = $TGT_PORT
tgt_control_port = $TGT_CONTROL
max_over_subscription_ratio = 20
# seals the CHAP secrets in the database; put a new key first to rotate
secret_keys = k1:$(head -c 32 /dev/urandom | base64)
CONF
}

start_tgtd() {
  if tgtadm -C "$TGT_CONTROL" --op show --mode sys >/dev/null 2>&1; then return; fi
  say "starting tgtd (control $TGT_CONTROL, portal 127.0.0.1:$TGT_PORT)"
  setsid tgtd -f -C "$TGT_CONTROL" --iscsi "portal=127.0.0.1:$TGT_PORT" >>"$STATE/logs/tgtd.log" 2>&1 </dev/null &
  echo $! >"$STATE/tgtd.pid"
  for _ in $(seq 50); do tgtadm -C "$TGT_CONTROL" --op show --mode sys >/dev/null 2>&1 && return; sleep 0.1; done
  echo "tgtd did not start; see $STATE/logs/tgtd.log" >&2; exit 1
}

stop_tgtd() {
  [ -f "$STATE/tgtd.pid" ] || return 0
  # tgtd ignores SIGTERM: offline, drop every target, then stop the daemon
  tgtadm -C "$TGT_CONTROL" --op update --mode sys --name State -v offline 2>/dev/null || true
  tgt-admin -C "$TGT_CONTROL" --delete ALL -f >/dev/null 2>&1 || true
  tgtadm -C "$TGT_CONTROL" --op delete --mode system 2>/dev/null || kill -KILL "$(cat "$STATE/tgtd.pid")" 2>/dev/null || true
  rm -f "$STATE/tgtd.pid"
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
  stop) stop_services; stop_tgtd ;;
  status) BASALT_CONFIG=$STATE/basalt.conf node libs/cli/dist/main.js service list ;;
  up)
    deps
    [ -d node_modules ] || npm ci --no-audit --no-fund
    npm run build
    write_config
    start_tgtd
    start_services
    say "Basalt is up. Config: $STATE/basalt.conf"
    say "Logs: $STATE/logs/{api,scheduler,volume-worker,compute-worker}.log"
    say "Services: ./stack.sh status    Volumes: BASALT_CONFIG=$STATE/basalt.conf npx basalt volume list    Stop: ./stack.sh stop"
    say "Try: cinder --os-auth-type noauth --os-user-id demo --os-project-id demo --os-endpoint http://127.0.0.1:8776/v3 create --name volume1 10"
    ;;
  *) echo "usage: $0 [up|deps|stop|status]" >&2; exit 2 ;;
esac
