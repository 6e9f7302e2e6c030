#!/usr/bin/env bash
# Steady-state CPU and RSS of one daemon serving N simulated organizations.
#
#   benches/orgs.sh N [warmup_s] [measure_s]
#
# Starts `simulate --orgs N` (its own process, so only the daemon is measured), writes a
# configuration with one [[orgs]] block per simulated organization (audit logs every 10 s,
# inventory, all eight compliance types every 30 s), runs the release daemon, waits
# `warmup_s` (default 90) for the backfill to finish, then samples /proc/<pid>/stat and
# /proc/<pid>/status every 5 s for `measure_s` (default 60) and prints the medians.
set -euo pipefail
n=${1:?number of organizations}
warmup=${2:-90}
measure=${3:-60}
bin=${BIN:-target/release/openai-audit-ingest}
port=${PORT:-19100}
work=$(mktemp -d)
trap 'kill $daemon $sim 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin" simulate --listen "127.0.0.1:$port" --orgs "$n" --events-per-second 5 >"$work/sim.out" 2>"$work/sim.err" &
sim=$!
for _ in $(seq 100); do grep -q "organization" "$work/sim.out" 2>/dev/null && [ "$(grep -c 'simulator listening' "$work/sim.out")" -ge "$n" ] && break; sleep 0.2; done
{
  cat <<TOML
[openai]
requests_per_minute = 600
[audit_logs]
poll_interval = "10s"
initial_lookback = "3h"
[compliance]
enabled = true
poll_interval = "30s"
initial_lookback = "3h"
[sink]
url = "http://127.0.0.1:$port/receiver/events"
[state]
dir = "$work/state"
[server]
listen = ""
[log]
level = "warn"
TOML
  if [ "$n" -gt 1 ]; then
    sed -n '/^\[\[orgs\]\]/,$p' "$work/sim.out"
  else
    key=$(grep -o 'admin api: .*Bearer [^)]*' "$work/sim.out" | sed 's/.*Bearer //')
    ckey=$(grep -o 'compliance api: .*Bearer [^)]*' "$work/sim.out" | sed 's/.*Bearer //')
    ws=$(grep -o 'workspace [0-9a-f-]*' "$work/sim.out" | head -1 | cut -d' ' -f2)
    org=$(grep -o 'organization org-[a-z0-9]*' "$work/sim.out" | head -1 | cut -d' ' -f2)
    printf '[[orgs]]\norganization_id = "%s"\nadmin_key = "%s"\nbase_url = "http://127.0.0.1:%s/v1"\ncompliance_principal_id = "%s"\ncompliance_api_key = "%s"\ncompliance_base_url = "http://127.0.0.1:%s/chatgpt/v1"\n' \
      "$org" "$key" "$port" "$ws" "$ckey" "$port"
  fi
} >"$work/config.toml"

"$bin" --config "$work/config.toml" run 2>"$work/daemon.err" &
daemon=$!
sleep "$warmup"
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$daemon/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$daemon/status"; }
prev=$(ticks)
cpu=(); mem=()
for _ in $(seq $((measure / 5))); do
  sleep 5
  now=$(ticks)
  cpu+=("$(awk -v d=$((now - prev)) -v hz="$hz" 'BEGIN {printf "%.2f", 100 * d / hz / 5}')")
  mem+=("$(rss)")
  prev=$now
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
c=$(median "${cpu[@]}"); m=$(median "${mem[@]}")
streams=$(ls "$work"/state/*/checkpoints 2>/dev/null | grep -c json || true)
received=$(curl -s "127.0.0.1:$port/_sim/receiver/stats" | tr -d '\n' | head -c 200)
echo "orgs=$n samples=${#cpu[@]} cpu_median_pct=$c rss_median_kib=$m cpu_per_org_pct=$(awk -v c="$c" -v n="$n" 'BEGIN {printf "%.3f", c / n}') rss_per_org_kib=$(awk -v m="$m" -v n="$n" 'BEGIN {printf "%.0f", m / n}') checkpoints=$streams"
echo "cpu samples (%): ${cpu[*]}"
echo "rss samples (KiB): ${mem[*]}"
echo "receiver: $received"
grep -ci "error" "$work/daemon.err" | sed 's/^/daemon error lines: /' || true
