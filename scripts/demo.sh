#!/usr/bin/env bash
# The Quickstart demo: runs Vela on its embedded default (no ../shared needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/bin
echo "== vela $($bin/vela --version)"
echo "== effective default configuration (configs/default.yaml)"
$bin/vela config --config configs/default.yaml
