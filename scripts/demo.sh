#!/usr/bin/env bash
# The Quickstart demo, on the embedded default: the demo model models/demo, a small
# Qwen3 with its own byte-level BPE tokenizer, trained by the project on the Python
# standard library's source (scripts/train_demo/), so it continues Python code. Where
# models/demo is missing, vela falls back to configs/demo-model (random weights and
# the fetched Qwen3 tokenizer) and the text is meaningless; the machinery is the same.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/bin
endpoint="ipc:///tmp/vela-demo-$$.sock"
trace="/tmp/vela-demo-$$-trace"
if [ ! -f models/demo/config.json ] && [ ! -f "${VELA_HOME:-/nonexistent}/models/demo/config.json" ]; then
  echo "(models/demo is missing: vela uses the random-weight stand-in configs/demo-model, so the text below is"
  echo " gibberish; scripts/train_demo/README.md says how the real demo model is made)"
  echo
fi

echo "== 1. In-process: vela generate (engine core + one CPU worker in this process), greedy"
$bin/vela generate --prompt "def fibonacci(n):" --max-tokens 48

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
echo "-- one request through the server, streamed"
$bin/vela generate --server "$endpoint" --prompt "def fibonacci(n):" --max-tokens 48
echo "-- 8 concurrent requests over one client connection (--json), sampled at temperature 0.8"
$bin/vela generate --server "$endpoint" --prompt "class Stack:" -n 8 --max-tokens 16 --temperature 0.8 --json \
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
