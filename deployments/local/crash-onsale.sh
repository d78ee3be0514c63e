#!/usr/bin/env bash
# An on-sale through crashes: `marquee bench onsale --target` drives a
# deployment of its own (serve and worker processes) while this script kills
# both with SIGKILL mid-sale and restarts them within a second or two, a few
# times. The bench's database check and hold-expiry lateness tell whether
# anything was lost, doubled or left behind. Needs the local services
# (deployments/local/services.sh --for-tests). Extra arguments go to the bench.
#
#   deployments/local/crash-onsale.sh [--seats 2000 --ga 1000 --buyers 6000]
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d "${TMPDIR:-/tmp}/marquee-crash.XXXXXX")
bin="$work/marquee"
go build -o "$bin" .

export MARQUEE_DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/marquee_crash?sslmode=disable"
export MARQUEE_REDIS_URL="redis://127.0.0.1:6379/15"
export MARQUEE_SECRET_KEY="crash-run-secret-key-long-enough-0123456789"
export MARQUEE_STRIPE_SECRET_KEY="sk_test_crashrun"
export MARQUEE_STRIPE_WEBHOOK_SECRET="whsec_crashrun"
export MARQUEE_STRIPE_API_URL="http://127.0.0.1:12111"
export MARQUEE_HTTP_ADDR="127.0.0.1:18090"
export MARQUEE_LOG_LEVEL="warn"
export MARQUEE_PASSWORD_COST=10

KILLS=${KILLS:-3}     # crashes during the sale
EVERY=${EVERY:-6}     # seconds between them
DOWN=${DOWN:-1}       # seconds both stay down

"$bin" migrate >/dev/null
redis-cli -n 15 flushdb >/dev/null

pids=()
start() {
  "$bin" serve >>"$work/serve.log" 2>&1 & pids[0]=$!
  "$bin" worker >>"$work/worker.log" 2>&1 & pids[1]=$!
}
stop() { kill -KILL "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; }
trap stop EXIT
start
for _ in $(seq 1 50); do curl -fs "http://$MARQUEE_HTTP_ADDR/healthz" >/dev/null && break; sleep 0.2; done

"$bin" bench onsale --target "http://$MARQUEE_HTTP_ADDR" --hold-minutes 1 --walk-away 0.1 --out "$work" "$@" >"$work/bench.txt" 2>&1 &
bench=$!
for i in $(seq 1 "$KILLS"); do
  sleep "$EVERY"
  kill -0 "$bench" 2>/dev/null || break
  echo "crash $i: SIGKILL serve and worker, restart in ${DOWN}s"
  stop
  sleep "$DOWN"
  start
done
wait "$bench" || true
cat "$work/bench.txt" | tr '\r' '\n' | grep -v '^\[' || true
echo "logs and report: $work"
