#pragma once
// The parts of a Hugging Face config.json the decoder models need, validated:
// anything the engine cannot compute faithfully is an "unsupported" error that
// names the key, rather than a silently different model.
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace vela {

struct RopeConfig {
  enum class Type { kDefault, kLinear, kLlama3 };
  Type type = Type::kDefault;
  double theta = 10000.0;
  bool interleaved = false;          // GPT-J pairs (2i, 2i+1); false = neox halves (i, i+d/2)
  double factor = 1.0;               // linear, llama3
  double low_freq_factor = 1.0;      // llama3
  double high_freq_factor = 4.0;     // llama3
  int64_t original_max_position_embeddings = 0;  // llama3
};

struct HFConfig {
  std::string source;                // path of config.json, for error messages
  std::string architecture;          // architectures[0]
  std::string model_type;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;              // may differ from hidden_size / num_attention_heads
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double initializer_range = 0.02;   // scale of dummy weights
  RopeConfig rope;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;             // q/k/v projections carry a bias (Qwen2; Llama attention_bias)
  bool o_bias = false;               // o_proj bias (Llama attention_bias)
  bool mlp_bias = false;             // Llama mlp_bias
  bool qk_norm = false;              // per-head RMSNorm on q and k before RoPE (Qwen3)
  std::vector<int32_t> eos_token_ids;
};

// Parses model_dir/config.json.
Result<HFConfig> load_hf_config(const std::string& model_dir);
// Parses config JSON text; source names it in errors.
Result<HFConfig> parse_hf_config(const std::string& json_text, const std::string& source);

}  // namespace vela
