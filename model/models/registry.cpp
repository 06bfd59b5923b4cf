#include "model/models/registry.h"

#include "model/hf_config.h"
#include "model/models/decoder_model.h"

namespace vela {

namespace {
// All three families share DecoderModel; the flags say how they differ.
constexpr ArchitectureInfo kArchitectures[] = {
    {"LlamaForCausalLM", /*qkv_bias=*/false, /*qk_norm=*/false, /*attention_bias_key=*/true},
    {"MistralForCausalLM", false, false, true},
    {"Qwen2ForCausalLM", true, false, false},
    {"Qwen3ForCausalLM", false, true, true},
};
}  // namespace

const ArchitectureInfo* find_architecture(const std::string& name) {
  for (const auto& a : kArchitectures)
    if (name == a.name) return &a;
  return nullptr;
}

std::string supported_architectures() {
  std::string s;
  for (const auto& a : kArchitectures) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

Result<std::unique_ptr<CausalLM>> create_model(const HFConfig& config, const ParallelInfo& parallel,
                                               Communicator* comm, const DeviceContext& ctx) {
  if (find_architecture(config.architecture) == nullptr)
    return make_error("unsupported", config.source + ": unsupported architecture '" + config.architecture +
                                         "' (supported: " + supported_architectures() + ")");
  VELA_TRY_ASSIGN(auto model, DecoderModel::create(config, parallel, comm, ctx));
  return std::unique_ptr<CausalLM>(std::move(model));
}

}  // namespace vela
