# Sourced by the bench scripts: start_simulator PORT [simulate options…] starts
# `$BIN simulate` on 127.0.0.1:PORT in the background, waits for its banner in $work/sim.out
# and sets sim (its pid), base (the Admin API root), admin_key, org and recv (the receiver).
start_simulator() {
  local port=$1
  shift
  "$BIN" simulate --listen "127.0.0.1:$port" "$@" >"$work/sim.out" 2>"$work/sim.err" &
  sim=$!
  for _ in $(seq 1 600); do grep -q "admin api" "$work/sim.out" 2>/dev/null && break; sleep 0.2; done
  local admin_url
  admin_url=$(sed -n 's/.*admin api: *\([^ ]*\) .*/\1/p' "$work/sim.out")
  admin_key=$(sed -n 's/.*admin api:.*Bearer \([^)]*\)).*/\1/p' "$work/sim.out")
  org=$(sed -n 's/.*organization \([^ ]*\)$/\1/p' "$work/sim.out")
  recv=$(sed -n 's/.*receiver: *\([^ ]*\) .*/\1/p' "$work/sim.out")
  base=${admin_url%/v1*}
}
