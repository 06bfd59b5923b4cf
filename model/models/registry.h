#pragma once
// Models by HF architectures[0]. Each entry says how the architecture differs
// from the common decoder (biases, q/k norm) and builds the model.
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace vela {

class CausalLM;
class Communicator;
struct HFConfig;
struct DeviceContext;

struct ArchitectureInfo {
  const char* name;             // "Qwen3ForCausalLM"
  bool qkv_bias;                // q/k/v bias regardless of attention_bias (Qwen2)
  bool qk_norm;                 // per-head q/k RMSNorm (Qwen3)
  bool attention_bias_key;      // config's attention_bias adds q/k/v/o biases (Llama)
};

// nullptr when the architecture is not supported.
const ArchitectureInfo* find_architecture(const std::string& name);
std::string supported_architectures();  // "LlamaForCausalLM, MistralForCausalLM, ..."

struct ParallelInfo {
  int tp_rank = 0;
  int tp_size = 1;
};

// Builds the model for config.architecture (weights not loaded yet); it computes
// on ctx's device (which must outlive it).
Result<std::unique_ptr<CausalLM>> create_model(const HFConfig& config, const ParallelInfo& parallel,
                                               Communicator* comm, const DeviceContext& ctx);

}  // namespace vela
