#include "model/hf_config.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/models/registry.h"

namespace vela {

namespace {

using nlohmann::json;

Error config_error(const std::string& source, const std::string& what) {
  return make_error("bad_config", source + ": " + what);
}
Error unsupported(const std::string& source, const std::string& what) {
  return make_error("unsupported", source + ": unsupported " + what);
}

// Reads a positive integer key; absent or null gives fallback (or an error when fallback < 0).
Result<int64_t> get_int(const json& j, const std::string& source, const char* key, int64_t fallback = -1) {
  if (!j.contains(key) || j[key].is_null()) {
    if (fallback < 0) return config_error(source, std::string("missing key '") + key + "'");
    return fallback;
  }
  if (!j[key].is_number_integer() || j[key].get<int64_t>() <= 0)
    return config_error(source, std::string("key '") + key + "' must be a positive integer, got " + j[key].dump());
  return j[key].get<int64_t>();
}

Result<double> get_real(const json& j, const std::string& source, const char* key, double fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number()) return config_error(source, std::string("key '") + key + "' must be a number");
  return j[key].get<double>();
}

bool get_bool(const json& j, const char* key, bool fallback) {
  if (!j.contains(key) || !j[key].is_boolean()) return fallback;
  return j[key].get<bool>();
}

// Rope settings come either as rope_theta + rope_scaling (classic) or as one
// rope_parameters object holding rope_theta and rope_type (transformers >= 5).
Result<RopeConfig> parse_rope(const json& j, const std::string& source, int64_t max_pos) {
  RopeConfig rope;
  json params = json::object();
  std::string key_name;
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    params = j["rope_parameters"];
    key_name = "rope_parameters";
  } else if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
    params = j["rope_scaling"];
    key_name = "rope_scaling";
  }
  VELA_TRY_ASSIGN(rope.theta, get_real(params, source, "rope_theta", 0.0));
  if (rope.theta == 0.0) {
    VELA_TRY_ASSIGN(rope.theta, get_real(j, source, "rope_theta", 10000.0));
  }
  if (!(rope.theta > 0.0)) return config_error(source, "rope_theta must be positive");
  std::string type = "default";
  if (params.contains("rope_type") && params["rope_type"].is_string()) type = params["rope_type"];
  else if (params.contains("type") && params["type"].is_string()) type = params["type"];
  if (type == "default") {
    rope.type = RopeConfig::Type::kDefault;
  } else if (type == "linear") {
    rope.type = RopeConfig::Type::kLinear;
  } else if (type == "llama3") {
    rope.type = RopeConfig::Type::kLlama3;
  } else {
    return unsupported(source, key_name + ".rope_type '" + type + "' (supported: default, linear, llama3)");
  }
  if (rope.type != RopeConfig::Type::kDefault) {
    VELA_TRY_ASSIGN(rope.factor, get_real(params, source, "factor", 0.0));
    if (!(rope.factor > 0.0)) return config_error(source, key_name + ".factor must be positive");
  }
  if (rope.type == RopeConfig::Type::kLlama3) {
    VELA_TRY_ASSIGN(rope.low_freq_factor, get_real(params, source, "low_freq_factor", 1.0));
    VELA_TRY_ASSIGN(rope.high_freq_factor, get_real(params, source, "high_freq_factor", 4.0));
    if (!(rope.high_freq_factor > rope.low_freq_factor))
      return config_error(source, key_name + ": high_freq_factor must exceed low_freq_factor");
    VELA_TRY_ASSIGN(rope.original_max_position_embeddings,
                    get_int(params, source, "original_max_position_embeddings", max_pos));
  }
  if (params.contains("partial_rotary_factor") || j.contains("partial_rotary_factor")) {
    auto prf = get_real(j.contains("partial_rotary_factor") ? j : params, source, "partial_rotary_factor", 1.0);
    if (!prf || prf.value() != 1.0) return unsupported(source, "partial_rotary_factor != 1");
  }
  return rope;
}

}  // namespace

Result<HFConfig> parse_hf_config(const std::string& json_text, const std::string& source) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    return config_error(source, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) return config_error(source, "not a JSON object");
  HFConfig c;
  c.source = source;
  if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].empty() ||
      !j["architectures"][0].is_string())
    return config_error(source, "missing architectures[0]");
  c.architecture = j["architectures"][0].get<std::string>();
  const ArchitectureInfo* arch = find_architecture(c.architecture);
  if (arch == nullptr)
    return unsupported(source, "architecture '" + c.architecture + "' (supported: " + supported_architectures() + ")");
  c.model_type = j.value("model_type", "");

  VELA_TRY_ASSIGN(c.vocab_size, get_int(j, source, "vocab_size"));
  VELA_TRY_ASSIGN(c.hidden_size, get_int(j, source, "hidden_size"));
  VELA_TRY_ASSIGN(c.intermediate_size, get_int(j, source, "intermediate_size"));
  VELA_TRY_ASSIGN(c.num_hidden_layers, get_int(j, source, "num_hidden_layers"));
  VELA_TRY_ASSIGN(c.num_attention_heads, get_int(j, source, "num_attention_heads"));
  VELA_TRY_ASSIGN(c.num_key_value_heads, get_int(j, source, "num_key_value_heads", c.num_attention_heads));
  if (c.hidden_size % c.num_attention_heads != 0 && !(j.contains("head_dim") && !j["head_dim"].is_null()))
    return config_error(source, "hidden_size is not a multiple of num_attention_heads and head_dim is absent");
  VELA_TRY_ASSIGN(c.head_dim, get_int(j, source, "head_dim", c.hidden_size / c.num_attention_heads));
  if (c.head_dim % 2 != 0) return config_error(source, "head_dim must be even for RoPE");
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    return config_error(source, "num_attention_heads is not a multiple of num_key_value_heads");
  VELA_TRY_ASSIGN(c.max_position_embeddings, get_int(j, source, "max_position_embeddings", 4096));
  VELA_TRY_ASSIGN(c.rms_norm_eps, get_real(j, source, "rms_norm_eps", 1e-6));
  VELA_TRY_ASSIGN(c.initializer_range, get_real(j, source, "initializer_range", 0.02));

  std::string act = j.value("hidden_act", std::string("silu"));
  if (act != "silu") return unsupported(source, "hidden_act '" + act + "' (supported: silu)");
  bool sliding = get_bool(j, "use_sliding_window", false) ||
                 (c.architecture == "MistralForCausalLM" && j.contains("sliding_window") && !j["sliding_window"].is_null());
  if (sliding) return unsupported(source, "sliding_window attention");

  VELA_TRY_ASSIGN(c.rope, parse_rope(j, source, c.max_position_embeddings));

  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", false);
  bool attention_bias = arch->attention_bias_key && get_bool(j, "attention_bias", false);
  c.qkv_bias = arch->qkv_bias || attention_bias;
  c.o_bias = attention_bias;
  c.mlp_bias = arch->attention_bias_key && get_bool(j, "mlp_bias", false);
  c.qk_norm = arch->qk_norm;

  if (j.contains("eos_token_id")) {
    const auto& eos = j["eos_token_id"];
    if (eos.is_number_integer()) c.eos_token_ids.push_back(eos.get<int32_t>());
    else if (eos.is_array())
      for (const auto& e : eos)
        if (e.is_number_integer()) c.eos_token_ids.push_back(e.get<int32_t>());
  }
  return c;
}

Result<HFConfig> load_hf_config(const std::string& model_dir) {
  std::string path = (std::filesystem::path(model_dir) / "config.json").string();
  std::ifstream in(path);
  if (!in) return make_error("io", path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_hf_config(ss.str(), path);
}

}  // namespace vela
