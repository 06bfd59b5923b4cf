#include "workers/sampler.h"

#include "common/hash.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace vela {

namespace {

int32_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;  // strict: ties keep the first index, as torch.argmax
  return int32_t(best);
}

bool is_greedy(const SamplingParams& p) { return p.temperature < 1e-5f; }

bool has_penalties(const SamplingParams& p) {
  return p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
}

}  // namespace

double Sampler::uniform(uint64_t seed, uint64_t counter) {
  uint64_t r = splitmix64(splitmix64(seed) ^ splitmix64(counter + 0x632be59bd9b4e019ull));
  return double(r >> 11) * (1.0 / 9007199254740992.0);  // 53 bits
}

void Sampler::apply_penalties(float* w, int64_t vocab, const SampleRow& row) {
  const SamplingParams& p = *row.params;
  if (counts_.size() < size_t(vocab)) {
    counts_.assign(size_t(vocab), 0);
    seen_.assign(size_t(vocab), 0);
  }
  if (p.repetition_penalty != 1.0f) {
    const float rp = p.repetition_penalty;
    auto penalise = [&](int32_t t) {
      if (t < 0 || t >= vocab || seen_[size_t(t)]) return;
      seen_[size_t(t)] = 1;
      w[t] = w[t] > 0.0f ? w[t] / rp : w[t] * rp;
    };
    for (int32_t t : row.prompt_ids) penalise(t);
    for (int32_t t : row.output_ids) penalise(t);
    for (int32_t t : row.prompt_ids) if (t >= 0 && t < vocab) seen_[size_t(t)] = 0;
    for (int32_t t : row.output_ids) if (t >= 0 && t < vocab) seen_[size_t(t)] = 0;
  }
  if (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    for (int32_t t : row.output_ids) if (t >= 0 && t < vocab) ++counts_[size_t(t)];
    for (int32_t t : row.output_ids) {
      if (t < 0 || t >= vocab || counts_[size_t(t)] == 0) continue;
      w[t] -= p.frequency_penalty * float(counts_[size_t(t)]) + p.presence_penalty;
      counts_[size_t(t)] = 0;  // once per distinct token; also resets the scratch
    }
  }
}

int32_t Sampler::sample_row(const float* raw, int64_t vocab, const SampleRow& row) {
  const SamplingParams& p = *row.params;
  if (is_greedy(p) && !has_penalties(p)) return argmax(raw, vocab);
  work_.assign(raw, raw + vocab);
  float* w = work_.data();
  if (has_penalties(p)) apply_penalties(w, vocab, row);
  if (is_greedy(p)) return argmax(w, vocab);

  // Unnormalised probabilities relative to the best token: e = exp((w - max) / T).
  const float inv_t = 1.0f / p.temperature;
  const float max_w = w[argmax(w, vocab)];
  for (int64_t i = 0; i < vocab; ++i) w[i] = std::exp((w[i] - max_w) * inv_t);
  candidates_.clear();
  const float min_keep = p.min_p > 0.0f ? p.min_p : 0.0f;  // relative to the best token's probability
  for (int64_t i = 0; i < vocab; ++i)
    if (w[i] >= min_keep && w[i] > 0.0f) candidates_.push_back(int32_t(i));
  auto by_prob = [w](int32_t a, int32_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); };
  if (p.top_k > 0 && size_t(p.top_k) < candidates_.size()) {
    std::nth_element(candidates_.begin(), candidates_.begin() + p.top_k, candidates_.end(), by_prob);
    candidates_.resize(size_t(p.top_k));
    std::sort(candidates_.begin(), candidates_.end());  // a deterministic order for the draw
  }
  if (p.top_p < 1.0f) {
    std::sort(candidates_.begin(), candidates_.end(), by_prob);
    double total = 0.0;
    for (int32_t c : candidates_) total += w[c];
    double kept = 0.0;
    size_t n = 0;
    while (n < candidates_.size()) {
      kept += w[candidates_[n++]];
      if (kept >= double(p.top_p) * total) break;  // smallest prefix holding top_p of the mass
    }
    candidates_.resize(n);
  }
  double total = 0.0;
  for (int32_t c : candidates_) total += w[c];
  double target = uniform(row.seed, uint64_t(row.output_ids.size())) * total;
  double acc = 0.0;
  for (int32_t c : candidates_) {
    acc += w[c];
    if (acc > target) return c;
  }
  return candidates_.back();  // rounding left target at the very end
}

void Sampler::sample(const Tensor& logits, std::span<const SampleRow> rows, int32_t num_top,
                     std::vector<int32_t>& tokens, StepLogprobs* logprobs) {
  const int64_t vocab = logits.size(1);
  tokens.resize(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    const float* raw = logits.data<float>() + int64_t(r) * logits.stride(0);
    tokens[r] = sample_row(raw, vocab, rows[r]);
    if (num_top < 0 || logprobs == nullptr) continue;
    // Logprobs of the raw distribution (before penalties and temperature).
    float max_raw = raw[argmax(raw, vocab)];
    double sum = 0.0;
    for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(raw[i] - max_raw));
    const float lse = max_raw + float(std::log(sum));
    logprobs->sampled_logprobs.push_back(raw[tokens[r]] - lse);
    if (num_top > 0) {
      order_.resize(size_t(vocab));
      for (int64_t i = 0; i < vocab; ++i) order_[size_t(i)] = int32_t(i);
      auto by_logit = [raw](int32_t a, int32_t b) { return raw[a] > raw[b] || (raw[a] == raw[b] && a < b); };
      std::partial_sort(order_.begin(), order_.begin() + num_top, order_.end(), by_logit);
      for (int32_t j = 0; j < num_top; ++j) {
        logprobs->top_ids.push_back(order_[size_t(j)]);
        logprobs->top_logprobs.push_back(raw[order_[size_t(j)]] - lse);
      }
    }
  }
}

}  // namespace vela
