#!/usr/bin/env bash
# Brings the whole Basalt stack up on this machine (Debian 12): system packages, PostgreSQL,
# RabbitMQ, the build, the database schema, then the four services in the background.
#
#   ./stack.sh          everything, then prints where the logs are
#   ./stack.sh deps     only the system packages and the broker, database and libvirtd (what `npm test` needs)
#   ./stack.sh libvirt  only starts virtlogd and libvirtd when they are not running
#   ./stack.sh stop     stops the four services
#   ./stack.sh status   the services table
#   ./stack.sh keystone       a real Keystone (Debian's package under uwsgi, fernet tokens, PostgreSQL)
#                             on its own port and database; idempotent (the tests start it this way)
#   ./stack.sh keystone-stop  stops it (KEYSTONE_PURGE=1 also drops its database and state)
#
# BASALT_AUTH picks the API's identity when the configuration is first written: builtin (default:
# the api's own Keystone v3 subset, what .stack/openrc logs python-openstackclient in to), noauth,
# or keystone (the real one, given Basalt's service user and catalog entries).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
STATE=${BASALT_STACK_DIR:-$ROOT/.stack}
PACKAGES=(
  postgresql rabbitmq-server
  tgt libiscsi-bin qemu-utils qemu-block-extra lvm2
  qemu-system-x86 libvirt-daemon-system libvirt-clients socat e2fsprogs
  fdisk dosfstools mtools syslinux syslinux-common busybox-static cpio
  python3-oslo.messaging python3-cinderclient python3-openstackclient
  keystone uwsgi-core uwsgi-plugin-python3 python3-psycopg2 curl
  tempest cinder-tempest-plugin python3-stestr
  chromium
)
SERVICES=(api scheduler volume-worker compute-worker)
TGT_CONTROL=${BASALT_TGT_CONTROL:-0}
TGT_PORT=${BASALT_TGT_PORT:-3260}
AUTH=${BASALT_AUTH:-builtin}
KEYSTONE_PORT=${KEYSTONE_PORT:-35357}
KEYSTONE_DB=${KEYSTONE_DB:-basalt_keystone}
KEYSTONE_DIR=${KEYSTONE_DIR:-/var/lib/basalt-keystone/$KEYSTONE_PORT}
KEYSTONE_URL=http://127.0.0.1:$KEYSTONE_PORT/v3

say() { printf '==> %s\n' "$*"; }

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return
  say "installing ${missing[*]}"
  # keystone's postinst would offer to set up a database and start the service on :5000: neither
  printf '%s\n' 'keystone keystone/configure_db boolean false' \
    'keystone keystone/create-admin-tenant boolean false' \
    'keystone keystone/register-endpoint boolean false' | debconf-set-selections
  local made_policy=''
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
  fi
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
  [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
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

# libvirt 9.0 in Debian 12 is the monolithic libvirtd; machines without systemd start it by hand
start_libvirt() {
  # without udev /dev/kvm stays root-only: libvirtd then finds its QEMU capabilities outdated on
  # every lookup ("KVM was enabled when probing … not available now") and probes QEMU again each
  # time, seconds per define; udev's rule gives it to the kvm group
  if [ -c /dev/kvm ] && [ "$(stat -c %G /dev/kvm)" != kvm ] && getent group kvm >/dev/null; then
    chgrp kvm /dev/kvm && chmod 660 /dev/kvm
  fi
  if ! { [ -S /run/libvirt/virtlogd-sock ] && [ -f /run/virtlogd.pid ] && kill -0 "$(cat /run/virtlogd.pid)" 2>/dev/null; }; then
    say "starting virtlogd"
    virtlogd -d
  fi
  virsh -c qemu:///system version >/dev/null 2>&1 && return
  say "starting libvirtd"
  # the first start probes QEMU's capabilities (several seconds); later ones read the cache
  LIBVIRT_LOG_OUTPUTS="3:file:/var/log/libvirt/libvirtd.log" libvirtd -d
  for _ in $(seq 300); do virsh -c qemu:///system version >/dev/null 2>&1 && return; sleep 0.2; done
  echo "libvirtd did not start; see /var/log/libvirt/libvirtd.log" >&2; exit 1
}

deps() {
  install_packages
  start_postgres
  start_rabbitmq
  start_libvirt
}

# A real Keystone for this machine, all of it under $KEYSTONE_DIR (owned by keystone; /etc/keystone
# is left alone): the config, fernet and credential keys, the uwsgi ini, pid and log, admin-openrc.
# Every step is idempotent, and a running instance is left as it is; a lock keeps two callers apart.
keystone_up() {
  install_packages
  start_postgres
  mkdir -p /run/lock
  exec 9>"/run/lock/basalt-keystone-$KEYSTONE_PORT.lock"
  flock 9
  if keystone_running && keystone_answers; then exec 9>&-; return; fi
  local conf=$KEYSTONE_DIR/keystone.conf ini=$KEYSTONE_DIR/uwsgi.ini setup=$KEYSTONE_DIR/setup.log
  install -d -o keystone -g keystone -m 0750 "$KEYSTONE_DIR"
  if [ ! -s "$KEYSTONE_DIR/admin-openrc" ]; then
    local password; password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    printf 'export %s\n' "OS_AUTH_URL=$KEYSTONE_URL" OS_IDENTITY_API_VERSION=3 OS_USERNAME=admin \
      "OS_PASSWORD=$password" OS_PROJECT_NAME=admin OS_USER_DOMAIN_NAME=Default \
      OS_PROJECT_DOMAIN_NAME=Default OS_REGION_NAME=RegionOne OS_INTERFACE=public >"$KEYSTONE_DIR/admin-openrc"
    chmod 0600 "$KEYSTONE_DIR/admin-openrc"
  fi
  local admin_password; admin_password=$(sed -n 's/^export OS_PASSWORD=//p' "$KEYSTONE_DIR/admin-openrc")
  if [ -z "$(psql -h 127.0.0.1 -U postgres -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$KEYSTONE_DB'")" ]; then
    psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE \"$KEYSTONE_DB\" ENCODING 'UTF8' TEMPLATE template0"
  fi
  # one uwsgi process, so the in-process cache stays coherent (a revocation is seen at once);
  # bcrypt at 4 rounds keeps a password login near 10 ms instead of 250
  cat >"$conf" <<EOF
[DEFAULT]
use_stderr = true
[database]
connection = postgresql+psycopg2://postgres@127.0.0.1:5432/$KEYSTONE_DB
[token]
provider = fernet
[fernet_tokens]
key_repository = $KEYSTONE_DIR/fernet-keys
[fernet_receipts]
key_repository = $KEYSTONE_DIR/fernet-keys
[credential]
key_repository = $KEYSTONE_DIR/credential-keys
[identity]
password_hash_rounds = 4
[cache]
backend = dogpile.cache.memory_pickle
EOF
  # uwsgi's http-socket closes every connection without saying so: Connection: close tells clients
  cat >"$ini" <<EOF
[uwsgi]
plugins = python3
http-socket = 127.0.0.1:$KEYSTONE_PORT
wsgi-file = /usr/bin/keystone-wsgi-public
env = OS_KEYSTONE_CONFIG_DIR=$KEYSTONE_DIR
uid = keystone
gid = keystone
chdir = $KEYSTONE_DIR
master = true
processes = 1
threads = 4
enable-threads = true
lazy-apps = true
need-app = true
die-on-term = true
no-orphans = true
skip-atexit-teardown = true
buffer-size = 65535
add-header = Connection: close
pidfile = $KEYSTONE_DIR/uwsgi.pid
daemonize = $KEYSTONE_DIR/keystone.log
EOF
  chown keystone:keystone "$conf" "$ini" && chmod 0640 "$conf"
  local manage=(/usr/bin/keystone-manage --config-file "$conf")
  "${manage[@]}" fernet_setup --keystone-user keystone --keystone-group keystone >>"$setup" 2>&1 &
  local fernet=$!
  "${manage[@]}" credential_setup --keystone-user keystone --keystone-group keystone >>"$setup" 2>&1 &
  local credential=$!
  "${manage[@]}" db_sync >>"$setup" 2>&1 || { tail -20 "$setup" >&2; exit 1; }
  wait "$fernet" && wait "$credential" || { tail -20 "$setup" >&2; exit 1; }
  OS_BOOTSTRAP_PASSWORD=$admin_password "${manage[@]}" bootstrap --bootstrap-username admin \
    --bootstrap-project-name admin --bootstrap-role-name admin --bootstrap-service-name keystone \
    --bootstrap-region-id RegionOne --bootstrap-public-url "$KEYSTONE_URL" \
    --bootstrap-internal-url "$KEYSTONE_URL" --bootstrap-admin-url "$KEYSTONE_URL" >>"$setup" 2>&1 ||
    { tail -20 "$setup" >&2; exit 1; }
  keystone_stop # alive but not answering
  if [ -n "$(ss -ltnH "sport = :$KEYSTONE_PORT")" ]; then
    echo "port $KEYSTONE_PORT is taken by another program; set KEYSTONE_PORT" >&2; exit 1
  fi
  say "starting Keystone on $KEYSTONE_URL"
  rm -f "$KEYSTONE_DIR/uwsgi.pid"
  # the daemon must not inherit the lock
  /usr/bin/uwsgi --ini "$ini" >>"$setup" 2>&1 9>&-
  for _ in $(seq 600); do
    keystone_answers && break
    if [ -s "$KEYSTONE_DIR/uwsgi.pid" ] && ! kill -0 "$(cat "$KEYSTONE_DIR/uwsgi.pid")" 2>/dev/null; then break; fi
    sleep 0.1
  done
  keystone_answers || { tail -30 "$KEYSTONE_DIR/keystone.log" >&2; echo "Keystone did not start" >&2; exit 1; }
  # bootstrap makes no service project or service role; services and Tempest expect both
  local token; token=$(keystone_token admin "$admin_password" admin)
  keystone_post "$token" projects '{"project":{"name":"service","domain_id":"default"}}'
  keystone_post "$token" roles '{"role":{"name":"service"}}'
  exec 9>&-
}

keystone_running() {
  local pid; pid=$(cat "$KEYSTONE_DIR/uwsgi.pid" 2>/dev/null) || return 1
  # the pid must still be our uwsgi, not a recycled number
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$KEYSTONE_DIR/uwsgi.ini"
}
keystone_answers() { curl -sf -o /dev/null --max-time 5 "$KEYSTONE_URL"; }

# keystone_token USER PASSWORD PROJECT: a project-scoped token (the X-Subject-Token of the answer)
keystone_token() {
  local body
  body=$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"%s","domain":{"id":"default"},"password":"%s"}}},"scope":{"project":{"name":"%s","domain":{"id":"default"}}}}}' "$1" "$2" "$3")
  curl -sf -D - -o /dev/null -H 'Content-Type: application/json' -d "$body" "$KEYSTONE_URL/auth/tokens" |
    awk 'tolower($1) == "x-subject-token:" { print $2 }' | tr -d '\r'
}
# keystone_post TOKEN PATH JSON: create, where 409 (it exists) is as good as 201
keystone_post() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $1" -H 'Content-Type: application/json' -d "$3" "$KEYSTONE_URL/$2")
  case $code in 201 | 409) ;; *) echo "Keystone: POST /$2 answered $code" >&2; exit 1 ;; esac
}

keystone_stop() {
  if keystone_running; then
    local pid; pid=$(cat "$KEYSTONE_DIR/uwsgi.pid")
    kill -TERM "$pid"
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$KEYSTONE_DIR/uwsgi.pid"
}

keystone_down() {
  keystone_stop
  if [ "${KEYSTONE_PURGE:-0}" = 1 ]; then
    psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$KEYSTONE_DB\" WITH (FORCE)"
    rm -rf -- "$KEYSTONE_DIR"
  fi
}

# Basalt's service user (role service in project service: enough to validate tokens) and its
# endpoints in RegionOne, for a stack whose API checks tokens against this Keystone
keystone_register_basalt() {
  local password=$1
  (
    # shellcheck disable=SC1091
    source "$KEYSTONE_DIR/admin-openrc"
    local o=/usr/bin/openstack
    $o user create --or-show --domain Default --password "$password" basalt >/dev/null
    $o user set --password "$password" basalt
    $o role add --project service --user basalt service
    for entry in 'volumev3 cinderv3 http://127.0.0.1:8776/v3/%(project_id)s' \
      'block-storage cinder http://127.0.0.1:8776/v3/%(project_id)s' \
      'compute nova http://127.0.0.1:8774/v2.1' 'image glance http://127.0.0.1:9292'; do
      read -r type name url <<<"$entry"
      $o service show "$type" >/dev/null 2>&1 || $o service create --name "$name" "$type" >/dev/null
      for iface in public internal; do
        [ -n "$($o endpoint list --service "$type" --interface "$iface" --region RegionOne -f value -c ID)" ] ||
          $o endpoint create --region RegionOne "$type" "$iface" "$url" >/dev/null
      done
    done
  )
}

write_config() {
  mkdir -p "$STATE/logs" "$STATE/volumes" "$STATE/tgt" "$STATE/images"
  # QEMU runs as libvirt-qemu: it must reach the instance folders
  mkdir -p -m 0755 "$STATE/instances"
  [ -f "$STATE/basalt.conf" ] && return
  local auth
  case $AUTH in
    noauth) auth='# development mode: X-Auth-Token user:project, the caller is admin of that project
auth_strategy = noauth

[service_user]
# the compute worker reaches the image API with the noauth token nova:service' ;;
    builtin) auth='# tokens from the api'"'"'s own identity API on :5000, users from [identity] users
auth_strategy = builtin

[service_user]
# the compute worker'"'"'s token for the image API
auth_url = http://127.0.0.1:5000/v3
username = admin
password = admin
project_name = admin' ;;
    keystone)
      local password; password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
      keystone_up
      keystone_register_basalt "$password"
      auth="# every token checked with the Keystone at $KEYSTONE_URL
auth_strategy = keystone

[keystone_authtoken]
www_authenticate_uri = $KEYSTONE_URL
auth_url = $KEYSTONE_URL
username = basalt
password = $password
project_name = service

[service_user]
# the compute worker's token for the image API
auth_url = $KEYSTONE_URL
username = basalt
password = $password
project_name = service" ;;
    *) echo "BASALT_AUTH must be noauth, builtin or keystone" >&2; exit 2 ;;
  esac
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
$auth

[identity]
token_secret = $(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
users = admin:admin:admin:admin,demo:demo:demo:member

[volume]
volume_driver = file
volumes_path = $STATE/volumes
image_conversion_dir = $STATE/conversion
volumes_dir = $STATE/tgt
iscsi_ip_address = 127.0.0.1
iscsi_port = $TGT_PORT
tgt_control_port = $TGT_CONTROL
max_over_subscription_ratio = 20
# seals the CHAP secrets in the database; put a new key first to rotate
secret_keys = k1:$(head -c 32 /dev/urandom | base64)

[glance_store]
filesystem_store_datadir = $STATE/images

[compute]
# this kind of machine has no usable KVM and no kernel iSCSI initiator: TCG guests, and QEMU's
# own initiator reaches the volumes
virt_type = qemu
volume_connector = qemu
instances_path = $STATE/instances
my_ip = 127.0.0.1
# the flavors ask for 512 MB to 16 GB; the test image needs far less, and this host is small
max_guest_memory_mb = 256
CONF
}

write_openrc() {
  case $AUTH in
    builtin) cat >"$STATE/openrc" <<RC
# source .stack/openrc: python-openstackclient (and cinder) as the demo user of the built-in identity
export OS_AUTH_URL=http://127.0.0.1:5000/v3
export OS_IDENTITY_API_VERSION=3
export OS_USERNAME=demo
export OS_PASSWORD=demo
export OS_PROJECT_NAME=demo
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export BASALT_CONFIG=$STATE/basalt.conf
RC
      ;;
    keystone) printf 'source %s/admin-openrc\nexport BASALT_CONFIG=%s/basalt.conf\n' "$KEYSTONE_DIR" "$STATE" >"$STATE/openrc" ;;
    *) printf '# noauth: python-openstackclient needs a token; run the stack with BASALT_AUTH=builtin\nexport BASALT_CONFIG=%s/basalt.conf\n' "$STATE" >"$STATE/openrc" ;;
  esac
}

# the BIOS-bootable test image (test/guest/build-image.sh), registered once as basalt-test
register_test_image() {
  export BASALT_CONFIG=$STATE/basalt.conf
  node libs/cli/dist/main.js image list | grep -q '| basalt-test ' && return
  say "building and registering the test image"
  local image; image=$(bash test/guest/build-image.sh | tail -n1)
  node libs/cli/dist/main.js image create --file "$image" --name basalt-test
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
  # each process's /metrics on a port of its own: 9101 api, 9102 scheduler, 9103 volume-worker, 9104 compute-worker
  local metrics_port=9100
  for s in "${SERVICES[@]}"; do
    metrics_port=$((metrics_port + 1))
    local pidfile=$STATE/$s.pid
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then continue; fi
    BASALT__METRICS__LISTEN_PORT=$metrics_port nohup node "services/$s/dist/main.js" >>"$STATE/logs/$s.log" 2>&1 </dev/null &
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
  libvirt) start_libvirt ;;
  stop) stop_services; stop_tgtd ;;
  status) BASALT_CONFIG=$STATE/basalt.conf node libs/cli/dist/main.js service list ;;
  up)
    deps
    [ -d node_modules ] || npm ci --no-audit --no-fund
    npm run build
    write_config
    write_openrc
    start_tgtd
    start_services
    register_test_image
    say "Basalt is up. Config: $STATE/basalt.conf"
    say "Logs: $STATE/logs/{api,scheduler,volume-worker,compute-worker}.log"
    say "Services: ./stack.sh status    Volumes: BASALT_CONFIG=$STATE/basalt.conf npx basalt volume list    Stop: ./stack.sh stop"
    case $AUTH in
      noauth) say "Try: cinder --os-auth-type noauth --os-user-id demo --os-project-id demo --os-endpoint http://127.0.0.1:8776/v3 create --name volume1 10" ;;
      builtin) say "Try: source $STATE/openrc; openstack volume create --size 1 volume1; openstack server create --flavor m1.small --image basalt-test --wait vm2" ;;
      keystone) say "Try: source $KEYSTONE_DIR/admin-openrc; cinder create --name volume1 10" ;;
    esac
    ;;
  keystone) keystone_up; say "Keystone: $KEYSTONE_URL (admin credentials: source $KEYSTONE_DIR/admin-openrc)" ;;
  keystone-stop) keystone_down ;;
  *) echo "usage: $0 [up|deps|libvirt|stop|status|keystone|keystone-stop]" >&2; exit 2 ;;
esac
