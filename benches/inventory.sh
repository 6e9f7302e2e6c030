#!/usr/bin/env bash
# Inventory at scale: one `once` with only the inventory stream against a simulated
# organization of USERS users and PROJECTS projects, unlimited request budget; prints peak
# RSS, CPU, requests and events. With RUNS=2 the same state directory runs twice: the second
# run is the next run. Before each run after the first, the simulator makes CHANGES audited
# changes (POST /_sim/changes: role changes, new project keys, new members; default 0). The
# next run is incremental (`inventory.full_interval`, default 24h) unless EXTRA sets
# `full_interval = "0s"`.
#
#   benches/inventory.sh [USERS] [PROJECTS]          (defaults 5000 300)
#   BIN=target/release/openai-audit-ingest REPEAT=3 benches/inventory.sh 20000 1000
#   RUNS=2 CHANGES=5 benches/inventory.sh 20000 1000     (run 2: incremental, 5 changes)
#   RUNS=2 EXTRA='full_interval = "0s"' benches/inventory.sh   (run 2: full, unchanged org)
set -euo pipefail
USERS=${1:-5000}
PROJECTS=${2:-300}
BIN=${BIN:-target/release/openai-audit-ingest}
REPEAT=${REPEAT:-1}
RUNS=${RUNS:-1}
PORT=${PORT:-18787}
EXTRA=${EXTRA:-}
CHANGES=${CHANGES:-0}
DAEMON_ENV=${DAEMON_ENV:-}
work=$(mktemp -d)
. "$(dirname "$0")/simulator.sh"
trap 'kill $sim 2>/dev/null || true; rm -rf "$work"' EXIT

start_simulator "$PORT" --events-per-second 0 --users "$USERS" --projects "$PROJECTS"

for r in $(seq 1 "$REPEAT"); do
  state="$work/state-$r"
  cat >"$work/config.toml" <<TOML
[openai]
admin_key = "$admin_key"
base_url = "$base"
organization_id = "$org"
requests_per_minute = 1000000
allow_insecure_http = true
[audit_logs]
enabled = false
[inventory]
enabled = true
$EXTRA
[sink]
url = "$recv"
allow_insecure_http = true
[state]
dir = "$state"
[log]
format = "json"
TOML
  for run in $(seq 1 "$RUNS"); do
    if [ "$run" -gt 1 ] && [ "$CHANGES" -gt 0 ]; then
      curl -sf -X POST "$base/_sim/changes?n=$CHANGES" >/dev/null || { echo "changes failed"; exit 1; }
    fi
    env $DAEMON_ENV /usr/bin/time -v "$BIN" --config "$work/config.toml" once --deadline 30m \
      >"$work/once.out" 2>"$work/once.err" || { echo "once failed"; tail -5 "$work/once.err"; exit 1; }
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/once.err")
    user=$(sed -n 's/.*User time (seconds): //p' "$work/once.err")
    sys=$(sed -n 's/.*System time (seconds): //p' "$work/once.err")
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/once.err")
    line=$(grep -h '"stream":"inventory"' "$work/once.out" "$work/once.err" | grep -o '"pages":[0-9]*\|"events":[0-9]*\|"run":"[a-z]*"\|"summary":"[^"]*"' | tr '\n' ' ' | tail -c 400)
    echo "repeat $r run $run: peak_rss_mib=$((rss / 1024)) cpu_s=$(echo "$user + $sys" | bc) wall=$wall $line"
  done
done
