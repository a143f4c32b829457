#!/usr/bin/env bash
# scripts/chaos.sh [--short] [chaos.py options]  -- the kill campaign.
#
# For each sink family (local ZIP, local PST, S3 ZIP streamed, S3 PST, IMAP vault, Maildir)
# a generated mailbox is migrated by the real `legacyflo` binary while the process is killed
# with SIGKILL at random points, including during commits and finish, each time resumed with
# the same state; then every output is checked (readable by unzip/zipfile, readpst/pypff,
# IMAP FETCH, a parser) and every source message must be present exactly once. Prints a
# table (sink, kills, lost, duplicated, changed, time); exits 1 on any loss, duplication,
# change, invalid output or panic. The kill points and the checks are described in
# scripts/chaos.py.
#
#   long form (default): 10,000 messages, 10 kills per family
#   --short:             2,000 messages, 3 kills per family (run by scripts/test.sh)
# Other options go to chaos.py: --messages N, --kills K, --families zip,pst,s3-zip,s3-pst,
# vault,maildir, --seed S (default: from the clock; printed, so a run can be repeated),
# --commit-every N, --keep (keep the work files; they are kept anyway on a failure).
#
# Uses the test servers of scripts/test-infra.sh (same TEST_INFRA_DIR / port variables);
# starts them when they are not running, and then stops them at the end. Builds the debug
# binaries with cargo (those of `cargo test --workspace`). Work files go to $CHAOS_WORK (default: a new directory under TMPDIR);
# the long form needs about 3 GB there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
args=(--messages 10000 --kills 10)
if [ "${1:-}" = --short ]; then
  shift
  args=(--messages 2000 --kills 3)
fi

export TEST_INFRA_DIR=${TEST_INFRA_DIR:-/tmp/test-infra}
started=0
servers=$(bash scripts/test-infra.sh status 2>/dev/null || true)
if ! grep -q '^dovecot: up' <<<"$servers" || ! grep -q '^seaweedfs: up' <<<"$servers"; then
  started=1
fi
work=${CHAOS_WORK:-}
made_work=0
if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/legacyflo-chaos.XXXXXX")
  made_work=1
fi
cleanup() {
  [ "$started" = 1 ] && bash scripts/test-infra.sh down || true
  # chaos.py keeps the files of a failed family for inspection; an empty dir goes
  [ "$made_work" = 1 ] && rmdir "$work" 2>/dev/null || true
}
trap cleanup EXIT
[ "$started" = 1 ] && bash scripts/test-infra.sh up </dev/null
# shellcheck disable=SC1091
. "$TEST_INFRA_DIR/env"

# the binaries `cargo test --workspace` builds (the same features, so after the test suite
# this builds nothing; `cargo build -p ...` would rebuild dependencies with other features)
cargo test --workspace --locked --no-run -q </dev/null 2>/dev/null \
  || cargo test --workspace --locked --no-run </dev/null
bin=$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug

# Debian's python3: pypff (python3-pypff) is installed for it, not for other pythons on PATH
/usr/bin/python3 scripts/chaos.py "${args[@]}" "$@" --work "$work" --bin "$bin"
