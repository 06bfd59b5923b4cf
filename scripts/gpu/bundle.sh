#!/usr/bin/env bash
# Builds the CUDA preset's executables here and packs them into .gpu/ for the GPU
# machine, with the reference models and goldens the GPU tests read, compressed
# (the machine takes 64 MiB per call, the working tree included).
#   scripts/gpu/bundle.sh [TARGETS...]   (default: vela, vela-worker, every GPU test and benchmark)
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake --preset cuda >/dev/null
gpu_targets=$(cd build-cuda && ninja -t targets all 2>/dev/null | sed -n 's/^\(\(test\|bench\)_[a-z_]*_gpu\): .*/\1/p' | sort -u | tr '\n' ' ')
targets=${*:-vela vela-worker $gpu_targets}
flock /tmp/vela-build.lock cmake --build build-cuda -j 2 --target $targets
rm -rf .gpu
bins=()
for t in $targets; do bins+=("build-cuda/bin/$t"); done
bash ../shared/tools/gpu-bundle.sh .gpu "${bins[@]}" >/dev/null
# Debug info is most of the size.
strip .gpu/bin/*
git rev-parse --short HEAD > .gpu/COMMIT
ref=../shared/reference
cache=build-cuda/reference.tar.xz  # xz: 31 MiB where gzip took 35 (the call carries 64 MiB)
if [ ! -f "$cache" ]; then
  stage=$(mktemp -d); mkdir -p "$stage/models" "$stage/golden"
  for m in qwen3-tiny llama3-tiny qwen2-tiny; do
    mkdir -p "$stage/models/$m"
    cp "$ref/models/$m"/{config.json,generation_config.json,model.safetensors} "$stage/models/$m/"
  done
  cp "$ref"/golden/{qwen3-tiny,llama3-tiny,qwen2-tiny}.json "$stage/golden/"
  tar cJf "$cache" -C "$stage" . && rm -rf "$stage"
fi
cp "$cache" .gpu/reference.tar.xz
# The libraries (OpenBLAS, ICU data) are most of it: xz brings bin + lib from ~115
# to ~21 MB. On the machine: tar xJf .gpu/bundle.tar.xz -C .gpu
tar -cf - -C .gpu bin lib COMMIT | xz -T2 -6 > .gpu/bundle.tar.xz
rm -rf .gpu/bin .gpu/lib
du -sh .gpu
# The device call carries the working tree (tracked and untracked-not-ignored files)
# plus .gpu, 64 MiB in all: say so here rather than in a refused call. models/demo
# (25 MB) is not needed there and is moved aside for the call.
tree=$(git ls-files -co --exclude-standard -z | grep -zv '^models/demo/' | xargs -0 stat -c %s 2>/dev/null |
  awk '{s += $1} END {print s + 0}')
gpu=$(du -sb .gpu | cut -f1)
total=$(( (tree + gpu) / 1048576 ))
echo "device call: ${total} MiB of 64 (tree without models/demo $(( tree / 1048576 )) MiB, .gpu $(( gpu / 1048576 )) MiB)"
[ "$total" -lt 64 ] || echo "warning: over the device call's 64 MiB; bundle fewer targets" >&2
