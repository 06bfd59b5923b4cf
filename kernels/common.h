#pragma once
// What every kernel header shares: the bf16 type and the check macro's sibling for
// launchers (a launcher returns the cudaError_t of its launch; callers check it).
// Layout convention: a "token-major head view" [T, n_heads, head_dim] has heads
// contiguous inside a token (head stride = head_dim) and a token stride of its own
// (q, k, v live inside one fused qkv row), always in elements.
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace vela::kernels {

using bf16 = __nv_bfloat16;

}  // namespace vela::kernels
