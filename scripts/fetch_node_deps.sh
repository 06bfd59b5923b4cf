#!/usr/bin/env bash
# Installs the official OpenAI client library (npm `openai`, pinned) into
# third_party/node/ for tests/http's client test (test_http_openai_client), which
# drives `vela serve`'s HTTP API with it. Idempotent; needs Node.js and npm.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/third_party/node"
pkg="openai@4.95.0"
if [ -f "$dest/node_modules/openai/package.json" ] &&
   grep -q '"version": "4.95.0"' "$dest/node_modules/openai/package.json"; then
  exit 0
fi
mkdir -p "$dest"
(cd "$dest" && npm install --silent --no-audit --no-fund --no-save --prefix "$dest" "$pkg" >/dev/null)
node -e "require('$dest/node_modules/openai')" 
echo "fetch_node_deps: $pkg -> $dest"
