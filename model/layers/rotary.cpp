#include "model/layers/rotary.h"

#include <cmath>

namespace vela {

std::vector<float> rope_inv_freq(const RopeConfig& rope, int64_t head_dim) {
  int64_t half = head_dim / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    float exponent = float(2 * i) / float(head_dim);  // fp32, as torch.arange(...).float() / dim
    inv[size_t(i)] = 1.0f / std::pow(float(rope.theta), exponent);
  }
  if (rope.type == RopeConfig::Type::kLinear) {
    for (float& f : inv) f = f / float(rope.factor);
  } else if (rope.type == RopeConfig::Type::kLlama3) {
    // Long wavelengths are slowed by `factor`, short ones kept, and the band in
    // between interpolated (Llama 3.1's rule).
    const float factor = float(rope.factor);
    const float low = float(rope.low_freq_factor), high = float(rope.high_freq_factor);
    const float old_len = float(rope.original_max_position_embeddings);
    const float low_freq_wavelen = old_len / low, high_freq_wavelen = old_len / high;
    const float two_pi = float(2.0 * M_PI);
    for (float& f : inv) {
      float wavelen = two_pi / f;
      float scaled = wavelen > low_freq_wavelen ? f / factor : f;
      if (!(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen)) {
        float smooth = (old_len / wavelen - low) / (high - low);
        scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
      }
      f = scaled;
    }
  }
  return inv;
}

Tensor make_rope_table(const RopeConfig& rope, int64_t head_dim, int64_t max_positions) {
  std::vector<float> inv = rope_inv_freq(rope, head_dim);
  int64_t half = head_dim / 2;
  Tensor table = Tensor::zeros({max_positions, head_dim}, DType::kF32);
  float* t = table.data<float>();
  for (int64_t p = 0; p < max_positions; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      float angle = float(p) * inv[size_t(i)];  // fp32 product, then an accurate cos/sin
      t[p * head_dim + i] = float(std::cos(double(angle)));
      t[p * head_dim + half + i] = float(std::sin(double(angle)));
    }
  }
  return table;
}

}  // namespace vela
