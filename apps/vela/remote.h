#pragma once
// Connecting a command (`vela generate --server`, `vela chat`) to a running
// `vela serve`: the endpoint and, for a server that requires CURVE, the key files.
#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "apps/vela/bench_common.h"
#include "client/client.h"

namespace vela::cli {

struct RemoteOpts {
  std::string server;           // frontend endpoint
  std::string server_key_file;  // the server's public key (its `vela keygen` PREFIX.pub)
  std::string client_key_file;  // this client's secret key (its PREFIX.key)
};

inline void add_remote_key_options(CLI::App* cmd, RemoteOpts& o) {
  cmd->add_option("--server-key", o.server_key_file,
                  "with --server: file with the server's CURVE public key (a server with security.curve_* set)");
  cmd->add_option("--client-key", o.client_key_file,
                  "with --server-key: file with this client's CURVE secret key (its public key must be authorized)");
}

inline std::unique_ptr<client::Client> connect_remote(const RemoteOpts& o) {
  std::optional<client::ClientCurveKeys> curve;
  if (o.server_key_file.empty() != o.client_key_file.empty()) fail("--server-key and --client-key go together");
  if (!o.server_key_file.empty()) {
    auto keys = client::ClientCurveKeys::from_files(o.server_key_file, o.client_key_file);
    if (!keys) fail(keys.error().message);
    curve = *keys;
  }
  auto c = client::Client::connect(o.server, curve);
  if (!c) fail(c.error().message);
  return std::move(c.value());
}

}  // namespace vela::cli
