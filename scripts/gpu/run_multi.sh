#!/usr/bin/env bash
# On a machine with two or more GPUs: tensor and data parallelism (issue 13), one log
# folder, a short table last. Builds nothing (scripts/gpu/bundle.sh builds here).
#   tar xJf .gpu/bundle.tar.xz -C .gpu
#   export LD_LIBRARY_PATH=$PWD/.gpu/lib:/usr/local/cuda/lib64; bash scripts/gpu/run_multi.sh $OUT [STAGES...]
# Stages (default all): nccl tp bench dp faults. $OUT gets summary.txt and logs.tar.gz.
set -uo pipefail
out=${1:?usage: run_multi.sh OUT_DIR [STAGES...]}; shift
stages=${*:-nccl tp bench dp faults}
logs=/tmp/vela-multi-logs
source "$(dirname "$0")/lib.sh"
vela=.gpu/bin/vela
ngpu=$(nvidia-smi -L | grep -c '^GPU')
mem() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | tr '\n' ' '; }

nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader > "$logs/gpu.csv" 2>&1
nvidia-smi topo -m > "$logs/topo.txt" 2>&1
note "GPUs: $(tr '\n' ';' < "$logs/gpu.csv")  commit: $(cat .gpu/COMMIT 2>/dev/null)"
note "link: $(grep -E '^GPU0' "$logs/topo.txt" | head -1)"

if has nccl; then
  note "== NCCL communicator on two GPUs; all-reduce latency"
  run test_nccl_gpu 120 .gpu/bin/test_nccl_gpu --durations yes
  grep -h "stalled peer\|passed\|failed" "$logs/test_nccl_gpu.log" | head -4 | sed 's/^/    /' | tee -a "$summary"
  run bench_nccl_gpu 120 .gpu/bin/bench_nccl_gpu --benchmark_min_time=0.1
  grep -E "^BM_" "$logs/bench_nccl_gpu.log" | sed 's/^/    /' | tee -a "$summary"
fi

if has tp; then
  note "== TP=2 vs TP=1 and the goldens on the reference models (in-process with worker processes, and vela serve)"
  run compare_tp2 400 python3 scripts/gpu/compare_hf.py "$ref" $vela "$logs/compare_tp2.jsonl" --tp 2
  grep -v "^ " "$logs/compare_tp2.log" | head -12 | sed 's/^/    /' | tee -a "$summary"
fi

if has bench; then
  note "== vela bench throughput, Llama-3.1-8B shape (dummy), TP=1 vs TP=2 (bound: ceilings measured in the same run, x GPUs)"
  for w in ${WORKLOADS:-S1 W2}; do
    run "throughput-$w-tp1" 300 $vela bench throughput --workload "$w" --device cuda:0 --no-progress --save --results-dir "$logs"
    grep -E "tok/s|wall|startup" "$logs/throughput-$w-tp1.log" | head -5 | sed 's/^/    /' | tee -a "$summary"
    run "throughput-$w-tp2" 300 $vela bench throughput --workload "$w" --set parallel.tensor_parallel_size=2 \
      --set parallel.devices=cuda:0,cuda:1 --no-progress --save --results-dir "$logs"
    grep -E "tok/s|wall|startup" "$logs/throughput-$w-tp2.log" | head -5 | sed 's/^/    /' | tee -a "$summary"
  done
fi

serve_bench() {  # serve_bench NAME WORKLOAD SETTINGS...: vela serve + vela bench serve through the ZeroMQ client
  local name=$1 workload=$2; shift 2
  local sock=ipc:///tmp/vela-multi-$name.sock
  $vela serve --config configs/default.yaml --set model.load_format=dummy --set frontend.endpoint=$sock "$@" \
    > "$logs/$name-server.log" 2>&1 &
  local server=$!
  run "$name" ${SERVE_TIMEOUT:-240} $vela bench serve --server $sock --workload "$workload" --connect-timeout 120 \
    --no-progress --save --results-dir "$logs"
  kill -TERM $server 2>/dev/null; wait $server
  grep -E "tok/s|failed|wall" "$logs/$name.log" | head -6 | sed 's/^/    /' | tee -a "$summary"
}

if has dp; then
  note "== W1 (Qwen3-0.6B shape) through vela serve: one replica, DP=2 on two GPUs, 2 replicas sharing cuda:0"
  q=--set\ model.path=perf/models/qwen3-0.6b
  serve_bench w1-dp1 W1 $q --set parallel.devices=cuda:0
  [ "$ngpu" -ge 2 ] && serve_bench w1-dp2 W1 $q --set parallel.data_parallel_size=2 --set parallel.devices=cuda:0,cuda:1
  serve_bench w1-2on1 W1 $q --set parallel.data_parallel_size=2 --set parallel.devices=cuda:0,cuda:0 \
    --set cache.gpu_memory_utilization=0.45
  note "   placement refusals:"
  for bad in "parallel.tensor_parallel_size=2 --set parallel.devices=cuda:0,cuda:0" \
              "parallel.data_parallel_size=2 --set parallel.devices=cuda:0,cuda:0" \
              "parallel.devices=cuda:7"; do
    $vela serve --config configs/default.yaml --set model.load_format=dummy $q --set $bad \
      --set frontend.endpoint=ipc:///tmp/vela-multi-bad.sock > "$logs/bad.log" 2>&1 & p=$!
    ( sleep 60; kill -9 $p 2>/dev/null ) & w=$!
    wait $p; rc=$?; kill $w 2>/dev/null
    note "    --set $bad -> exit $rc: $(grep -iE 'error|parallel|cache' "$logs/bad.log" | head -1 | cut -c1-220)"
  done
fi

if has faults; then
  note "== Failure inside a collective: TP=2 vela serve (Qwen3-0.6B shape), restart_workers on, step deadline 3 s"
  sock=ipc:///tmp/vela-multi-faults.sock
  wait_ready() { for i in $(seq 1 ${1:-120}); do
      $vela generate --server $sock --prompt-ids 1,2,3 --max-tokens 2 --timeout 5 > /dev/null 2>&1 && return 0; sleep 0.5; done; return 1; }
  mem0=$(mem)
  $vela serve --config configs/default.yaml --set model.path=perf/models/qwen3-0.6b --set model.load_format=dummy \
    --set model.max_model_len=8192 --set parallel.tensor_parallel_size=2 --set parallel.devices=cuda:0,cuda:1 \
    --set parallel.restart_workers=true --set parallel.step_timeout_s=3 --set cache.gpu_memory_utilization=0.5 \
    --set frontend.endpoint=$sock > "$logs/faults-server.log" 2>&1 &
  server=$!
  wait_ready 240 || note "   server never became ready"
  mem1=$(mem)
  note "   GPU memory used (MiB per GPU): before the server $mem0; serving $mem1"
  for fault in "KILL 1" "STOP 0" "KILL 0"; do
    set -- $fault; sig=$1; rank=$2
    $vela generate --server $sock --prompt-ids 1,2,3,4,5,6,7,8 -n 16 --max-tokens 8000 --ignore-eos --json --timeout 120 \
      > "$logs/faults-$sig-$rank.json" 2> "$logs/faults-$sig-$rank.err" &
    gen=$!
    sleep 4
    pid=$(pgrep -f "vela-worker --rank $rank " | head -1)
    t0=$(date +%s.%N); kill -$sig $pid
    wait $gen; t1=$(date +%s.%N)
    total=$(wc -l < "$logs/faults-$sig-$rank.json"); errors=$(grep -c '"finish_reason":"error"' "$logs/faults-$sig-$rank.json")
    wait_ready 240; t2=$(date +%s.%N)
    note "$(printf '   SIG%s rank %s (pid %s): all %s requests ended %.2f s after the signal, %s with an error, %s lost; serving again %.1f s later; memory %s' \
      $sig $rank "$pid" $total $(awk "BEGIN{print $t1-$t0}") $errors $((16 - total)) $(awk "BEGIN{print $t2-$t1}") "$(mem)")"
    note "     error: $(head -1 "$logs/faults-$sig-$rank.err" | cut -c1-240)"
  done
  kill -TERM $server; wait $server; sleep 2
  note "   after the server exited: $(mem) (before it started: $mem0)"
  grep -E "rank|restart|dead|stalled|NCCL" "$logs/faults-server.log" | head -20 | sed 's/^/    | /' >> "$summary"
fi

tar czf "$out/logs.tar.gz" -C "$logs" .
note "logs: logs.tar.gz"
