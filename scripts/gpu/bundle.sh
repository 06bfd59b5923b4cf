#!/usr/bin/env bash
# Builds the CUDA preset's executables here and packs them into .gpu/ for the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake --preset cuda >/dev/null
targets=${*:-vela}
cmake --build build-cuda --target $targets
rm -rf .gpu
bins=()
for t in $targets; do bins+=("build-cuda/bin/$t"); done
bash ../shared/tools/gpu-bundle.sh .gpu "${bins[@]}"
# Debug info is most of the size; the machine takes 64 MiB per call.
strip .gpu/bin/*
du -sh .gpu
