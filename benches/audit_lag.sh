#!/usr/bin/env bash
# Audit-log lag while a full inventory run is in progress: the daemon (`run`, audit logs
# polled every POLL, inventory on, the default request budget and share) against a simulated
# organization of USERS users and PROJECTS projects whose background activity adds EPS audit
# events a second. A sink of our own (benches/lag_receiver.py) notes when each event arrives;
# an audit event's lag is its arrival minus its `occurred_at` (the moment the simulator made
# it available, to the second, so lags read up to 1 s long). Events that happened in the first
# WARMUP seconds (the first poll's catch-up) are left out. Prints the lag's median, p95 and max,
# and the inventory's progress (pages read, events delivered) to show the run was going on.
#
#   benches/audit_lag.sh [USERS] [PROJECTS]        (defaults 5000 300)
#   DURATION=600 POLL=5s EPS=1 benches/audit_lag.sh 5000 300
set -euo pipefail
USERS=${1:-5000}
PROJECTS=${2:-300}
BIN=${BIN:-target/release/openai-audit-ingest}
DURATION=${DURATION:-300}
WARMUP=${WARMUP:-30}
POLL=${POLL:-5s}
EPS=${EPS:-1}
PORT=${PORT:-18788}
SINK_PORT=${SINK_PORT:-18789}
METRICS_PORT=${METRICS_PORT:-19464}
EXTRA=${EXTRA:-}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
. "$(dirname "$0")/simulator.sh"
sim= rx= daemon=
trap 'kill $daemon $rx $sim 2>/dev/null || true; rm -rf "$work"' EXIT

python3 "$here/lag_receiver.py" "$SINK_PORT" "$work/arrivals.tsv" &
rx=$!
start_simulator "$PORT" --events-per-second "$EPS" --users "$USERS" --projects "$PROJECTS"

cat >"$work/config.toml" <<TOML
[openai]
admin_key = "$admin_key"
base_url = "$base"
organization_id = "$org"
allow_insecure_http = true
[audit_logs]
enabled = true
poll_interval = "$POLL"
initial_lookback = "10m"
[inventory]
enabled = true
$EXTRA
[sink]
url = "http://127.0.0.1:$SINK_PORT/events"
allow_insecure_http = true
[state]
dir = "$work/state"
[server]
listen = "127.0.0.1:$METRICS_PORT"
[log]
format = "json"
TOML
start=$(date +%s)
"$BIN" --config "$work/config.toml" run >"$work/run.out" 2>"$work/run.err" &
daemon=$!
sleep "$DURATION"
metrics=$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics" || true)
kill -TERM $daemon; wait $daemon || true
daemon=
inventory_pages=$(echo "$metrics" | awk '/^oai_ingest_pages_total\{.*stream="inventory"/ {s += $2} END {print s + 0}')
python3 - "$work/arrivals.tsv" "$start" "$WARMUP" "$inventory_pages" <<'PY'
import sys
from datetime import datetime
path, start, warmup, pages = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
lags, inventory = [], 0
for line in open(path):
    arrived, source, occurred, _id = line.rstrip("\n").split("\t")
    if source == "openai.inventory":
        inventory += 1
    if source != "openai.audit_log":
        continue
    t = datetime.fromisoformat(occurred.replace("Z", "+00:00")).timestamp()
    if t >= start + warmup:
        lags.append(float(arrived) - t)
lags.sort()
def q(p):
    return lags[min(len(lags) - 1, int(p * len(lags)))] if lags else float("nan")
print(f"audit events after warm-up: {len(lags)}  lag median {q(0.5):.1f} s  p95 {q(0.95):.1f} s  max {lags[-1] if lags else float('nan'):.1f} s")
print(f"inventory during the window: {pages} pages read, {inventory} events delivered")
PY
