#!/usr/bin/env bash
# On the GPU machine: every GPU test and benchmark of the bundle, one log folder,
# a short table last. Builds nothing (scripts/gpu/bundle.sh builds here).
#   tar xJf .gpu/bundle.tar.xz -C .gpu
#   export LD_LIBRARY_PATH=$PWD/.gpu/lib:/usr/local/cuda/lib64; bash scripts/gpu/run_tests.sh $OUT [STAGES...]
# Stages (default all): tests compare bench throughput startup serve sanitizer; peers
# (HF transformers S1, plain and with static cache + torch.compile, ~3 min); profile
# (nsys per-kernel time of short S1 and W2 runs, graphs traced by node) and ncu (Nsight
# Compute: each kernel's GPU time over a window of launches, summed per step and per
# kind; NCU_RUNS="name skip count args...;...") run only when named. throughput runs
# WORKLOADS (default S1 W1 P1 W2) with decode CUDA graphs, then EAGER_WORKLOADS (default S1 W1)
# with --enforce-eager (EAGER_WORKLOADS= skips those). $OUT gets summary.txt and
# logs.tar.gz (every log and JSON), so the 8-file limit of the way back holds.
set -uo pipefail
out=${1:?usage: run_tests.sh OUT_DIR [STAGES...]}; shift
stages=${*:-tests compare bench throughput startup serve sanitizer}
logs=/tmp/vela-gpu-logs
source "$(dirname "$0")/lib.sh"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$logs/gpu.csv" 2>&1
note "GPU: $(cat "$logs/gpu.csv")  commit: $(cat .gpu/COMMIT 2>/dev/null)"

if has tests; then
  note "== GPU tests (each kernel vs the CPU backend; the reference models end to end)"
  # GPU_TESTS="name[:catch filter];...": only those (e.g. "test_attention_gpu:[prefill]"); default all.
  if [ -n "${GPU_TESTS:-}" ]; then IFS=';' read -ra specs <<< "$GPU_TESTS"
  else specs=(); for t in .gpu/bin/test_*_gpu; do specs+=("$(basename "$t")"); done; fi
  for spec in "${specs[@]}"; do
    t=.gpu/bin/${spec%%:*}; filter=(); [[ "$spec" == *:* ]] && filter=("${spec#*:}")
    [ -x "$t" ] || { note "$t: not in the bundle"; continue; }
    run "$(basename "$t")" ${TEST_TIMEOUT:-300} "$t" "${filter[@]}" --durations yes
    grep -h "largest\|WARN\|passed\|failed" "$logs/$(basename "$t").log" | head -8 | sed 's/^/    /' | tee -a "$summary"
  done
fi

if has compare; then
  note "== Vela (in-process and vela serve on cuda:0) vs HF transformers bf16 on this GPU and the fp32 goldens"
  run compare_hf 300 python3 scripts/gpu/compare_hf.py "$ref" .gpu/bin/vela "$logs/compare_hf.jsonl"
  grep -v "^ " "$logs/compare_hf.log" | head -10 | sed 's/^/    /' | tee -a "$summary"
fi

if has bench; then
  note "== Kernel benchmarks (against the copy bandwidth measured in the same binary)"
  # BENCHES="bench_linear_gpu ...": only those (default every bench_*_gpu of the bundle).
  benches=(); for b in ${BENCHES:-$(cd .gpu/bin && ls bench_*_gpu)}; do benches+=(".gpu/bin/$b"); done
  for b in "${benches[@]}"; do
    [ -x "$b" ] || continue
    run "$(basename "$b")" ${BENCH_TIMEOUT:-240} "$b" --benchmark_min_time=${BENCH_MIN_TIME:-0.1} \
      --benchmark_filter="${BENCH_FILTER:-.}" --benchmark_out="$logs/$(basename "$b").json" --benchmark_out_format=json
    grep -E "^BM_|^bench|ratio|GB/s" "$logs/$(basename "$b").log" | head -40 | sed 's/^/    /' | tee -a "$summary"
    # bench_attention_gpu's closing table: both decode kernels per case.
    sed -n '/^decode attention, copy ceiling/,$p' "$logs/$(basename "$b").log" | sed 's/^/    /' | tee -a "$summary"
  done
  if [ -n "${BENCH_NOPDL:-}" ]; then  # the linear layers again without programmatic dependent launch
    VELA_PDL=0 run bench_linear_gpu-nopdl ${BENCH_TIMEOUT:-240} .gpu/bin/bench_linear_gpu \
      --benchmark_min_time=${BENCH_MIN_TIME:-0.1} --benchmark_filter="${BENCH_NOPDL_FILTER:-BM_Linear}"
    grep -E "^BM_" "$logs/bench_linear_gpu-nopdl.log" | head -40 | sed 's/^/    /' | tee -a "$summary"
  fi
  [ -n "${BENCHES:-}" ] || run roofline 300 .gpu/bin/vela bench roofline --save --results-dir "$logs"
  tail -n 12 "$logs/roofline.log" | sed 's/^/    /' | tee -a "$summary"
fi

if has throughput; then
  note "== vela bench throughput on cuda:0 (dummy weights of the real shapes, bound from ceilings measured in the same run)"
  # Decode CUDA graphs on (the default), then the EAGER_WORKLOADS again with --enforce-eager
  # (model.enforce_eager=true) in the same call, so the two compare on one machine.
  throughput() {  # throughput NAME WORKLOAD [ARGS...]
    local name=$1 w=$2; shift 2
    run "$name" ${THROUGHPUT_TIMEOUT:-300} .gpu/bin/vela bench throughput --workload "$w" --device cuda:0 "$@" \
      --no-progress --save --results-dir "$logs"
    grep -E "tok/s|wall|startup|hit|graph|step:|eager step|host share" "$logs/$name.log" | head -24 | sed 's/^/    /' | tee -a "$summary"
  }
  for w in ${WORKLOADS:-S1 W1 P1 W2}; do throughput "throughput-$w" "$w"; done
  for w in ${EAGER_WORKLOADS-S1 W1}; do throughput "throughput-$w-eager" "$w" --enforce-eager; done
  # NOPDL_WORKLOADS (default none): again with programmatic dependent launch off
  # (VELA_PDL=0, kernels/launch.cuh), so its gain is measured on one machine.
  for w in ${NOPDL_WORKLOADS-}; do (export VELA_PDL=0; throughput "throughput-$w-nopdl" "$w"); done
  # AB_WORKLOADS (default none) again under AB_ENV ("VAR=value ..."), e.g.
  # AB_ENV=VELA_PREFILL_WGMMA=0: an A/B of one switch on one machine.
  for w in ${AB_WORKLOADS-}; do (export ${AB_ENV:?AB_ENV names the switch}; throughput "throughput-$w-ab" "$w"); done
fi

if has startup; then
  note "== startup: process start to first token, Llama-3.1-8B shape (dummy weights), in-process on cuda:0"
  run startup-8b 120 bash -c 'time .gpu/bin/vela generate --device cuda:0 --model perf/models/llama-3.1-8b --load-format dummy \
    --prompt-ids 1,2,3,4,5,6,7,8 --max-tokens 1 --json'
  grep -E "^real|loaded|KV cache" "$logs/startup-8b.log" | sed 's/^/    /' | tee -a "$summary"
fi

if has serve; then
  note "== L1 through the ZeroMQ client: vela serve, Llama-3.1-8B shape on cuda:0 (4 req/s, 200 requests)"
  sock=ipc:///tmp/vela-gpu-l1.sock
  # The scheduler limits of `vela bench throughput` (256 sequences, 8192 tokens a step),
  # not configs/default.yaml's CPU-sized ones, so S1 / W2 compare with in-process.
  limits="--set scheduler.max_num_seqs=256 --set scheduler.max_num_batched_tokens=8192"
  .gpu/bin/vela serve --config configs/default.yaml --set model.path=perf/models/llama-3.1-8b --set model.load_format=dummy \
    --set model.max_model_len=4096 --set parallel.devices=cuda:0 --set frontend.endpoint=$sock $limits \
    > "$logs/serve-l1-server.log" 2>&1 &
  server=$!
  run serve-L1 ${SERVE_TIMEOUT:-150} .gpu/bin/vela bench serve --server $sock --workload L1 --device "NVIDIA H200 (cuda:0)" \
    --connect-timeout 60 --no-progress --save --results-dir "$logs"
  grep -E "TTFT|TPOT|failed|tok/s" "$logs/serve-L1.log" | head -12 | sed 's/^/    /' | tee -a "$summary"
  # S1 and W2 through the server (all at t=0): the engine and worker processes at full load.
  serve_load() {  # serve_load TAG
    for w in S1 W2; do
      run "serve-$w$1" ${SERVE_TIMEOUT:-150} .gpu/bin/vela bench serve --server $sock --workload $w \
        --device "NVIDIA H200 (cuda:0)" --connect-timeout 60 --no-progress --save --results-dir "$logs"
      grep -E "output tokens/s|TPOT mean|TTFT mean|wall|failed" "$logs/serve-$w$1.log" | head -6 | sed 's/^/    /' | tee -a "$summary"
    done
  }
  serve_load ""
  kill -TERM $server 2>/dev/null; wait $server
  grep -h "built ahead" "$logs/serve-l1-server.log" | sed 's/^/    /' | tee -a "$summary"
  if [ -n "${SERVE_AB:-}" ]; then  # the same load with the worker's lookahead off
    note "-- again with VELA_WORKER_LOOKAHEAD=0 (a step's host inputs built only when it arrives)"
    VELA_WORKER_LOOKAHEAD=0 .gpu/bin/vela serve --config configs/default.yaml --set model.path=perf/models/llama-3.1-8b \
      --set model.load_format=dummy --set model.max_model_len=4096 --set parallel.devices=cuda:0 \
      --set frontend.endpoint=$sock $limits > "$logs/serve-noahead-server.log" 2>&1 &
    server=$!
    serve_load "-noahead"
    kill -TERM $server 2>/dev/null; wait $server
    grep -h "built ahead" "$logs/serve-noahead-server.log" | sed 's/^/    /' | tee -a "$summary"
  fi
fi

if has peers; then
  note "== peers in the same call: HF transformers S1 (Llama-3.1-8B shape, random weights, bf16), plain and compiled"
  # PEERS="plain compiled" (default both): which of the two to run.
  has_peer() { [[ " ${PEERS:-plain compiled} " == *" $1 "* ]]; }
  has_peer plain && run hf-S1 ${PEERS_TIMEOUT:-240} python3 scripts/gpu/hf_baseline.py --workload S1 --out "$logs/peers.jsonl"
  has_peer compiled && run hf-S1-compiled ${PEERS_TIMEOUT:-400} python3 scripts/gpu/hf_baseline.py --workload S1 --compiled \
    --out "$logs/peers.jsonl"
  [ -f "$logs/peers.jsonl" ] && python3 - "$logs/peers.jsonl" <<'PY' | sed 's/^/    /' | tee -a "$summary"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"{r['workload']} {r['engine']}: {r['output_tok_per_s']:.1f} output tok/s "
          f"(wall {r['wall_s']:.2f} s, warm-up/compile {r.get('compile_s', 0):.1f} s)")
PY
fi

if has sanitizer; then
  note "== compute-sanitizer memcheck on short runs (errors counted; exit 9 on any)"
  cs="compute-sanitizer --tool memcheck --error-exitcode 9 --print-limit 20"
  run sanitizer-reference 300 $cs .gpu/bin/vela generate --device cuda:0 --model "$ref/models/qwen3-tiny" \
    --set cache.gpu_memory_utilization=0.2 --set scheduler.max_num_batched_tokens=64 --set scheduler.max_num_seqs=8 \
    --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --prompt-ids 7,8 --max-tokens 12 --ignore-eos
  # 20 sequences: decode steps reach the tensor-core kernel (kAuto picks it from 16),
  # the tail reaches the GEMV (1-2 rows); chunked prefill mixes batches.
  run sanitizer-qwen3-0.6b 300 $cs .gpu/bin/vela bench throughput --workload W1 --device cuda:0 --num-requests 20 \
    --length-factor 0.03 --hbm-tbps 4.2 --gemm-tflops 800 --no-progress \
    --set scheduler.max_num_batched_tokens=128 --set scheduler.max_num_seqs=32 --set cache.gpu_memory_utilization=0.3
  grep -h "ERROR SUMMARY" "$logs"/sanitizer-*.log | sed 's/^/    /' | tee -a "$summary"
fi

if has profile; then
  note "== nsys: GPU time per kernel (graphs traced by node) on cuda:0"
  if command -v nsys >/dev/null; then
    prof() {  # prof NAME WORKLOAD [ARGS...]
      local name=$1 w=$2; shift 2
      run "nsys-$name" 300 nsys profile --cuda-graph-trace=node --sample=none --cpuctxsw=none -o "$logs/$name" \
        .gpu/bin/vela bench throughput --workload "$w" --device cuda:0 --no-progress "$@"
      nsys stats --report cuda_gpu_kern_sum --format csv -o "$logs/$name" "$logs/$name.nsys-rep" > /dev/null 2>&1
      python3 - "$logs/${name}_cuda_gpu_kern_sum.csv" <<'PY' | sed 's/^/    /' | tee -a "$summary"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
total = sum(float(r["Total Time (ns)"]) for r in rows)
print(f"{'share':>6} {'total ms':>9} {'calls':>7} {'avg us':>8}  kernel (GPU total {total/1e6:.1f} ms)")
for r in rows[:18]:
    t = float(r["Total Time (ns)"])
    print(f"{100*t/total:5.1f}% {t/1e6:9.2f} {r['Instances']:>7} {float(r['Avg (ns)'])/1e3:8.2f}  {r['Name'][:90]}")
PY
    }
    # PROFILE_RUNS="name WORKLOAD [ARGS...];...": what to trace (default short S1 and W2).
    IFS=';' read -ra prof_runs <<< "${PROFILE_RUNS:-s1 S1 --num-requests 4;w2 W2 --num-requests 64}"
    for spec in "${prof_runs[@]}"; do prof $spec; done
  else
    note "    nsys not on this machine"
  fi
fi

if has ncu; then
  note "== ncu: GPU time per kernel, summed per engine step (a sampler launch ends a step)"
  IFS=';' read -ra ncu_runs <<< "${NCU_RUNS:-p1 400 3000 --workload P1 --enforce-eager}"
  for spec in "${ncu_runs[@]}"; do
    read -r name skip count args <<< "$spec"
    run "ncu-$name" ${NCU_TIMEOUT:-300} ncu --metrics gpu__time_duration.sum --csv --print-units base \
      --launch-skip "$skip" --launch-count "$count" --log-file "$logs/ncu-$name.csv" \
      .gpu/bin/vela bench throughput --device cuda:0 --no-progress $args
    python3 scripts/gpu/ncu_steps.py "$logs/ncu-$name.csv" | sed 's/^/    /' | tee -a "$summary"
  done
fi

tar czf "$out/logs.tar.gz" -C "$logs" .
note "logs: logs.tar.gz"
