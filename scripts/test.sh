#!/usr/bin/env bash
# scripts/test.sh [cargo test args...] -- THE project test command.
#
# Starts the real test servers (Dovecot IMAP + SeaweedFS S3, see scripts/test-infra.sh), runs
# `cargo test --workspace --locked` against them, stops them again, and exits with cargo's
# status. Works from a fresh clone as root on Debian 12, non-interactively (CI=true, no stdin).
# Extra arguments go to cargo test, e.g. `bash scripts/test.sh -p legacyflo-sinks -- imap`.
# Without extra arguments the short kill campaign (`scripts/chaos.sh --short`: every sink
# family killed with SIGKILL and resumed, then checked for lost or duplicated messages)
# runs after the tests and fails the run on any finding.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

section() { printf '\n==== %s ====\n' "$*"; }

# cargo from rustup when the environment does not have it on PATH
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { echo "scripts/test.sh: cargo not found" >&2; exit 1; }

export TEST_INFRA_DIR=${TEST_INFRA_DIR:-/tmp/test-infra}

stop_servers() {
  section "test servers: down"
  bash scripts/test-infra.sh down || true
}
# set before `up`, so that a half-started setup is cleaned up as well
trap stop_servers EXIT

section "test servers: up (Dovecot IMAP + SeaweedFS S3)"
start=$SECONDS
bash scripts/test-infra.sh up </dev/null
echo "servers ready in $((SECONDS - start)) s"
# shellcheck disable=SC1091
. "$TEST_INFRA_DIR/env"

# Free space matters: the PST suite writes a 4.4 GB file (under the roomiest of the temp
# dir and /dev/shm). Printed before and after, so a full disk is visible in the log.
disk() { df -h "${TMPDIR:-/tmp}" /dev/shm . 2>/dev/null | awk '!seen[$0]++' || true; }
section "disk before the tests"
disk

# --no-fail-fast: every test binary runs, so one failure does not hide the others;
# cargo still exits non-zero when anything failed. (Dropped from the extra arguments,
# where cargo would refuse it twice.)
args=()
for a in "$@"; do [ "$a" = --no-fail-fast ] || args+=("$a"); done
set -- ${args[@]+"${args[@]}"}
section "cargo test --workspace --locked --no-fail-fast${*:+ $*}"
status=0
cargo test --workspace --locked --no-fail-fast "$@" </dev/null || status=$?

section "cargo test finished with exit status $status"
if [ $# -eq 0 ]; then
  section "kill campaign, short form (scripts/chaos.sh --short)"
  start=$SECONDS
  chaos=0
  bash scripts/chaos.sh --short </dev/null || chaos=$?
  echo "kill campaign finished with exit status $chaos in $((SECONDS - start)) s"
  [ "$status" != 0 ] || status=$chaos
fi
disk
exit "$status"
