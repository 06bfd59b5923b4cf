// `vela keygen PREFIX`: a CURVE key pair for a server or a client of `vela serve`:
// PREFIX.key (the secret key, mode 0600) and PREFIX.pub (the public key). A server
// names its .key in security.curve_secret_key_file and gives its .pub to clients; a
// client's .pub goes into the server's security.curve_authorized_keys_file.
#include <iostream>
#include <memory>

#include "apps/vela/bench_common.h"
#include "apps/vela/commands.h"
#include "transport/curve_auth.h"

namespace vela::cli {

void add_keygen_command(CLI::App& app) {
  auto prefix = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("keygen", "Make a CURVE key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub");
  cmd->add_option("prefix", *prefix, "path prefix of the two files")->required();
  cmd->callback([prefix]() {
    auto pair = transport::write_curve_keypair(*prefix);
    if (!pair) fail(pair.error().message);
    std::cout << "wrote " << *prefix << ".key (secret) and " << *prefix << ".pub: " << pair->public_key << "\n";
  });
}

}  // namespace vela::cli
