#!/usr/bin/env bash
# Runs the release `legacyflo` against every scenario of the testkit's hostile IMAP server
# (legacyflo-testkit/src/hostile_imap.rs) under /usr/bin/time -v and prints a table:
# scenario, exit code, wall time, peak RSS, what the report said.
#
#   bash scripts/hostile-imap.sh [SCENARIO ...]      (default: every scenario)
#
# Source scenarios run IMAP-S3-ZIP into a local directory; `huge-appenduid` runs
# MBOX-VAULTASTIC4 from samples/mailbox into the hostile server as the vault. Each run
# uses --source-command-timeout (or --dest-command-timeout) of HOSTILE_DEADLINE seconds
# (default 10) and the default retry policy (6 retries, backoff 0.5 s doubling), so a run
# that fails every attempt ends within 7 deadlines plus 31.5 s of backoff. Nothing else
# is configured. Needs python3 (to read the JSON reports) and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."

deadline="${HOSTILE_DEADLINE:-10}"
cargo build --release --locked -q -p legacyflo-cli -p legacyflo-testkit --bins
bin="$PWD/target/release/legacyflo"
srv="$PWD/target/release/hostile-imap"
if [ "$#" -gt 0 ]; then
    scenarios=("$@")
else
    mapfile -t scenarios < <("$srv" --list | grep -v '^honest$')
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
export HOSTILE_PW=pw

rows=()
for s in "${scenarios[@]}"; do
    "$srv" "$s" 0 >"$work/$s.port" 2>"$work/$s.server.log" &
    server_pid=$!
    port=""
    for _ in $(seq 1 100); do
        port="$(sed -n 's/^port //p' "$work/$s.port")"
        [ -n "$port" ] && break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "hostile-imap $s did not start" >&2
        exit 1
    fi
    if [ "$s" = "huge-appenduid" ]; then
        args=(run MBOX-VAULTASTIC4 --source-url samples/mailbox
            --dest-server 127.0.0.1 --dest-port "$port" --dest-user vault
            --dest-password-env HOSTILE_PW --dest-tls none
            --dest-command-timeout "$deadline")
    else
        args=(run IMAP-S3-ZIP --source-server 127.0.0.1 --source-port "$port"
            --source-user someone --source-password-env HOSTILE_PW --source-tls none
            --source-command-timeout "$deadline" --dest-url "$work/$s-out/")
    fi
    set +e
    /usr/bin/time -v -o "$work/$s.time" "$bin" -q "${args[@]}" \
        --state-dir "$work/$s-state" --report "$work/$s.json" \
        >"$work/$s.stdout" 2>"$work/$s.stderr"
    code=$?
    set -e
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    wall="$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/$s.time")"
    rss_kb="$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$s.time")"
    said="$(python3 - "$work/$s.json" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"no report ({e.__class__.__name__})")
    sys.exit(0)
f = r.get("folders", [])
stored = sum(x.get("messages", 0) for x in f)
skipped = sum(x.get("skipped", 0) for x in f)
expunged = sum(x.get("expunged", 0) for x in f)
notes = sum(len(x.get("notes", [])) for x in f)
parts = [r.get("status", "?"), f"{len(f)} folders", f"{stored} stored", f"{skipped} skipped"]
if expunged:
    parts.append(f"{expunged} expunged")
if notes:
    parts.append(f"{notes} notes")
parts.append(f"{r.get('retries', 0)} retries")
fail = [x["failures"][0]["reason"] for x in f if x.get("failures")]
if fail:
    parts.append("first skip: " + fail[0][:110])
if r.get("error"):
    parts.append("error: " + r["error"][:140])
print("; ".join(parts).replace("|", "/").replace("\n", " "))
EOF
)"
    rows+=("| $s | $code | $wall | $((rss_kb / 1024)) MB | $said |")
done

echo "| scenario | exit | wall | peak RSS | report |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
