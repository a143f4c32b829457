#!/usr/bin/env bash
# scripts/test-infra.sh up|down|env|status
#
# Real servers on loopback for legacyflo's integration tests (Debian 12, run as root):
#   * Dovecot 2.3 IMAP on 127.0.0.1:$IMAP_PORT (plain + STARTTLS) and :$IMAPS_PORT (TLS),
#     certificates from our own CA ($DIR/tls/ca.crt), Maildir LAYOUT=fs, master user,
#     XOAUTH2/OAUTHBEARER with local HS256 JWT validation, no auth penalty;
#   * moto S3 server on 127.0.0.1:$S3_PORT (in a venv under $DIR).
# `up` installs what is missing (apt packages, vmail user, the venv), starts both servers if
# they are not already running from $DIR, and writes $DIR/env for `. $DIR/env`.
# `down` stops them. Both are idempotent. Daemons are fully detached from our stdio, so
# `test-infra.sh up | tail` or a CI log reader never hangs on them.
#
# Environment (all optional):
#   TEST_INFRA_DIR  state directory (default /tmp/test-infra; keep it short: unix socket
#                   paths are limited to 108 bytes, and it must be traversable by vmail)
#   IMAP_PORT=10143 IMAPS_PORT=10993 S3_PORT=10900 MOTO_VERSION=5.2.5
set -euo pipefail

DIR=$(realpath -m "${TEST_INFRA_DIR:-/tmp/test-infra}")
IMAP_PORT=${IMAP_PORT:-10143}   # plain + STARTTLS
IMAPS_PORT=${IMAPS_PORT:-10993} # implicit TLS
S3_PORT=${S3_PORT:-10900}
MOTO_VERSION=${MOTO_VERSION:-5.2.5}
APT_PACKAGES=(dovecot-imapd openssl curl pst-utils pff-tools python3-pypff isync python3 python3-venv)
USERS=(alice bob carol@example.test big empty vault src dst oauthuser rsrc rdst) # password = name + "pw"
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
s3_answers() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$S3_PORT/"; }
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
dovecot_running() { pid_alive "$D/run/master.pid"; }
moto_running() { pid_alive "$DIR/s3/moto.pid"; }
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
  # a venv whose pip run was interrupted has moto_server but cannot import moto: rebuild it
  if ! "$DIR/venv/bin/python" -c "import moto, flask, flask_cors, crc32c; assert moto.__version__ == '$MOTO_VERSION'" 2>/dev/null; then
    log "python venv: moto[s3]==$MOTO_VERSION flask flask-cors crc32c"
    rm -rf "$DIR/venv"
    python3 -m venv "$DIR/venv" || die "python3 -m venv failed"
    # crc32c: without it moto silently computes CRC32 where CRC32C is asked for
    local pkgs=("moto[s3]==$MOTO_VERSION" flask flask-cors crc32c)
    # uv resolves and installs in a few seconds where pip takes 10-30 s; pip is the fallback
    if "$DIR/venv/bin/pip" install -q --disable-pip-version-check --no-input uv </dev/null \
       && "$DIR/venv/bin/uv" pip install -q --python "$DIR/venv/bin/python" "${pkgs[@]}" </dev/null; then
      :
    else
      log "uv failed, installing with pip"
      "$DIR/venv/bin/pip" install -q --disable-pip-version-check --no-input "${pkgs[@]}" </dev/null \
        || die "pip install ${pkgs[*]} failed"
    fi
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

start_moto() {
  mkdir -p "$DIR/s3"
  if moto_running && s3_answers; then
    log "moto already running on $S3_PORT"
    return 0
  fi
  moto_running && stop_pid "$DIR/s3/moto.pid" moto
  port_free "$S3_PORT" || busy "$S3_PORT" S3
  # nohup + no stdio: survives our exit and never holds the caller's pipes
  nohup "$DIR/venv/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" \
    </dev/null >"$DIR/s3/moto.log" 2>&1 &
  echo $! > "$DIR/s3/moto.pid"
  wait_for 60 s3_answers || { tail -30 "$DIR/s3/moto.log" >&2; die "moto does not answer on 127.0.0.1:$S3_PORT"; }
  log "moto S3 up on http://127.0.0.1:$S3_PORT"
}

env_file() {
  cat <<EOF
# written by scripts/test-infra.sh; source it: . $DIR/env
export TEST_INFRA_DIR=$DIR
export TEST_IMAP_HOST=127.0.0.1 TEST_IMAP_PORT=$IMAP_PORT TEST_IMAPS_PORT=$IMAPS_PORT
export TEST_IMAP_CA=$DIR/tls/ca.crt TEST_IMAP_MAILDIR_ROOT=$D/mail
export TEST_IMAP_MASTER_USER=admin TEST_IMAP_MASTER_PASS=masterpw
export TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=testtest AWS_REGION=us-east-1
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
  start_moto
  env_file > "$DIR/env.new" && mv "$DIR/env.new" "$DIR/env"
  log "ready: . $DIR/env"
}

stop_pid() { # stop_pid PIDFILE NAME
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    wait_for 15 bash -c "! kill -0 $pid" || { log "$2 ($pid) still running: SIGKILL"; kill -9 "$pid" 2>/dev/null || true; }
    log "stopped $2 ($pid)"
  fi
  rm -f "$1"
}

down() {
  stop_pid "$D/run/master.pid" dovecot
  stop_pid "$DIR/s3/moto.pid" moto
}

status() {
  if dovecot_running && imap_greeting; then echo "dovecot: up on $IMAP_PORT/$IMAPS_PORT"; else echo "dovecot: down"; fi
  if moto_running && s3_answers; then echo "moto: up on $S3_PORT"; else echo "moto: down"; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) env_file ;;
  status) status ;;
  *) echo "usage: $0 up|down|env|status" >&2; exit 2 ;;
esac
