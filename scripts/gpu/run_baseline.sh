#!/usr/bin/env bash
# On the GPU machine: the roofline and the HF transformers baseline in one run.
#   export LD_LIBRARY_PATH=$PWD/.gpu/lib:/usr/local/cuda/lib64; bash scripts/gpu/run_baseline.sh $OUT [WORKLOADS...]
# Needs .gpu/bin/vela built with the cuda preset (scripts/gpu/bundle.sh).
set -uo pipefail
out=${1:?usage: run_baseline.sh OUT_DIR [WORKLOADS...]}; shift
workloads=${*:-S1 W2 W1}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.csv" 2>&1
.gpu/bin/vela bench roofline --save --results-dir "$out" 2>&1 | tee "$out/roofline.txt"
args=()
for w in $workloads; do args+=(--workload "$w"); done
python3 scripts/gpu/hf_baseline.py "${args[@]}" --out "$out/hf.jsonl" 2> "$out/hf.log"
echo "== HF transformers baseline"
python3 - "$out/hf.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"{r['workload']}: {r['output_tok_per_s']:.0f} output tok/s, {r['total_tok_per_s']:.0f} total tok/s, "
          f"{r['wall_s']:.1f} s, peak {r['peak_device_bytes']/2**30:.1f} GiB on {r['device']}")
PY
