#pragma once
// Reads ../shared/reference/golden/MODEL.json (HF transformers' outputs for the
// reference models) for the model and runner tests.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vela::testing {

struct GoldenStep {
  int32_t token = 0;
  float logit = 0;
  float logprob = 0;   // log-softmax of the raw logits at the chosen token
  float margin = 0;
  std::vector<int32_t> top_ids;
  std::vector<float> top_logits;
};

struct GoldenCase {
  std::vector<int32_t> prompt;
  std::vector<int32_t> generated;
  std::vector<GoldenStep> steps;
  // Greedy decoding must match `generated` before the first step whose margin
  // (top-1 minus top-2 logit) is under 1e-2: later tokens may legitimately flip.
  size_t num_reliable_tokens(float min_margin = 1e-2f) const {
    for (size_t i = 0; i < steps.size(); ++i)
      if (steps[i].margin < min_margin) return i;
    return steps.size();
  }
};

// VELA_REFERENCE_DIR in the environment overrides the build's ../shared/reference
// (the GPU machine gets a copy beside the bundle).
inline std::string reference_dir() {
  const char* env = std::getenv("VELA_REFERENCE_DIR");
  return env != nullptr && *env != 0 ? env : VELA_REFERENCE_DIR;
}
inline std::string model_dir(const std::string& model) { return reference_dir() + "/models/" + model; }

// VELA_GOLDEN_CASES=N keeps the first N cases (sanitizer builds run fewer).
inline size_t golden_case_limit() {
  const char* env = std::getenv("VELA_GOLDEN_CASES");
  return env != nullptr ? size_t(std::strtoul(env, nullptr, 10)) : size_t(-1);
}

inline std::vector<GoldenCase> load_golden(const std::string& model) {
  std::ifstream in(reference_dir() + "/golden/" + model + ".json");
  auto j = nlohmann::json::parse(in);
  std::vector<GoldenCase> cases;
  for (const auto& c : j["cases"]) {
    if (cases.size() >= golden_case_limit()) break;
    GoldenCase gc;
    gc.prompt = c["prompt"].get<std::vector<int32_t>>();
    gc.generated = c["generated"].get<std::vector<int32_t>>();
    for (const auto& s : c["steps"]) {
      GoldenStep st;
      st.token = s["token"];
      st.logit = s["logit"];
      st.logprob = s.value("logprob", 0.0f);
      st.margin = s["margin"];
      st.top_ids = s["top_ids"].get<std::vector<int32_t>>();
      st.top_logits = s["top_logits"].get<std::vector<float>>();
      gc.steps.push_back(std::move(st));
    }
    cases.push_back(std::move(gc));
  }
  return cases;
}

}  // namespace vela::testing
