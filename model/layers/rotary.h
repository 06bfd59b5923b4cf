#pragma once
// RoPE tables: cos/sin of position * inverse frequency, computed in fp32 the way
// HF transformers computes them (default, linear and llama3 frequency scaling).
#include <cstdint>
#include <vector>

#include "model/hf_config.h"
#include "model/tensor.h"

namespace vela {

// The hd/2 inverse frequencies after scaling.
std::vector<float> rope_inv_freq(const RopeConfig& rope, int64_t head_dim);

// [max_positions, head_dim]: cos in [:hd/2], sin in [hd/2:].
Tensor make_rope_table(const RopeConfig& rope, int64_t head_dim, int64_t max_positions);

}  // namespace vela
