#!/usr/bin/env bash
# Installs what train.py packed (DIR/vela-demo-model.tar.gz or its .part-aa, -ab, ...)
# as models/demo/, after checking DIR/SHA256SUMS.
#   scripts/train_demo/install.sh /path/to/the/fetched/demo
set -euo pipefail
src="${1:?usage: install.sh DIR (holding vela-demo-model.tar.gz[.part-*] and SHA256SUMS)}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
name=vela-demo-model.tar.gz
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if [ -f "$src/$name" ]; then
  cp "$src/$name" "$tmp/$name"
else
  cat "$src/$name".part-* > "$tmp/$name"
fi
want="$(awk -v n="$name" '$2 == n { print $1 }' "$src/SHA256SUMS")"
got="$(sha256sum "$tmp/$name" | cut -d' ' -f1)"
[ "$want" = "$got" ] || { echo "install.sh: checksum mismatch for $name ($got, SHA256SUMS says $want)" >&2; exit 1; }
rm -rf "$root/models/demo"
mkdir -p "$root/models"
tar -xzf "$tmp/$name" -C "$root/models"
echo "installed $(du -sh "$root/models/demo" | cut -f1) in models/demo:"
ls -la "$root/models/demo"
