// `vela config`: validate a config file and print the effective configuration,
// or list every key with its type, default and meaning.
#include <iostream>
#include <memory>

#include "apps/vela/commands.h"
#include "configs/config.h"

namespace vela::cli {

void add_config_command(CLI::App& app) {
  struct Opts {
    std::string file;
    std::vector<std::string> overrides;
    bool keys = false;
    bool markdown = false;
  };
  auto opts = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("config", "Validate a config and print the effective values (or --keys)");
  cmd->add_option("--config", opts->file, "YAML config file");
  cmd->add_option("--set", opts->overrides, "Override a key: section.key=value (repeatable)");
  cmd->add_flag("--keys", opts->keys, "List every key with its type, default and meaning");
  cmd->add_flag("--markdown", opts->markdown, "With --keys: a Markdown table (configs/README.md)");
  cmd->callback([opts]() {
    if (opts->keys && opts->markdown) {
      std::cout << "| key | type | default | meaning |\n| --- | --- | --- | --- |\n";
      for (const auto& k : config_keys())
        std::cout << "| `" << k.name << "` | " << k.type << " | `" << k.default_value << "` | " << k.doc << " |\n";
      return;
    }
    if (opts->keys) {
      for (const auto& k : config_keys())
        std::cout << k.name << " (" << k.type << ", default " << k.default_value << "): " << k.doc << "\n";
      return;
    }
    auto config = load_config(opts->file, opts->overrides);
    if (!config) {
      std::cerr << "vela: " << config.error().message << "\n";
      throw CLI::RuntimeError(2);
    }
    std::cout << dump_config(*config) << "\n";
  });
}

}  // namespace vela::cli
