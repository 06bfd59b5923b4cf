// cuBLASLt GEMM: out[m, n] = x[m, k] · w[n, k]^T (+ bias[n]).
// cuBLASLt is column-major, so the row-major out [m, n] (row stride ldo) is the
// column-major outᵀ [n, m] with leading dimension ldo, and we compute
//   outᵀ[n, m] = op(A) · op(B),  A = w  (col-major [k, n], ld k,  op = T)
//                                B = x  (col-major [k, m], ld ldx, op = N).
// The bias epilogue adds bias[row of D] = bias[n], which is what nn.Linear wants.
//
// One plan (descriptors + algorithm) per shape, built on first use and cached:
// the heuristic runs once per shape, never on the step path after warm-up.
// The key includes the pointers' alignments, because the heuristic may pick a
// kernel that needs 16-byte (or more) aligned operands and a strided x view
// (q inside a fused qkv row) may be less aligned than a fresh allocation.
#include "kernels/gemm.h"

#include <cublasLt.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <unordered_map>

namespace vela::kernels {

namespace {

struct PlanKey {
  int64_t m, n, k, x_row_stride, out_row_stride;
  bool out_f32, has_bias, in_f32;
  uint16_t align_x, align_w, align_out, align_bias;
  bool operator==(const PlanKey&) const = default;
};

struct PlanKeyHash {
  size_t operator()(const PlanKey& key) const {
    uint64_t h = 0xcbf29ce484222325ull;
    auto mix = [&h](uint64_t v) { h = (h ^ v) * 0x100000001b3ull; h ^= h >> 29; };
    mix(uint64_t(key.m)); mix(uint64_t(key.n)); mix(uint64_t(key.k));
    mix(uint64_t(key.x_row_stride)); mix(uint64_t(key.out_row_stride));
    mix(uint64_t(key.out_f32) | uint64_t(key.has_bias) << 1 | uint64_t(key.in_f32) << 2 | uint64_t(key.align_x) << 8 |
        uint64_t(key.align_w) << 20 | uint64_t(key.align_out) << 32 | uint64_t(key.align_bias) << 44);
    return size_t(h);
  }
};

// The largest power of two (<= 256) dividing the address: what the heuristic may assume.
uint16_t alignment_of(const void* p) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  uint16_t a = 256;
  while (a > 1 && addr % a != 0) a /= 2;
  return a;
}

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

std::string shape_text(const PlanKey& key) {
  return "m=" + std::to_string(key.m) + " n=" + std::to_string(key.n) + " k=" + std::to_string(key.k) +
         " x_row_stride=" + std::to_string(key.x_row_stride) + " out_row_stride=" +
         std::to_string(key.out_row_stride) + (key.in_f32 ? " in=f32" : " in=bf16") +
         (key.out_f32 ? " out=f32" : " out=bf16") +
         (key.has_bias ? " bias" : "") + " align(x,w,out,bias)=" + std::to_string(key.align_x) + "," +
         std::to_string(key.align_w) + "," + std::to_string(key.align_out) + "," + std::to_string(key.align_bias);
}

Error cublas_error(const char* what, cublasStatus_t status, const PlanKey* key) {
  std::string msg = std::string(what) + " failed: " + cublasLtGetStatusString(status) + " (" +
                    std::to_string(int(status)) + ")";
  if (key != nullptr) msg += " for GEMM " + shape_text(*key);
  return make_error("cublas", msg);
}

// Gemm::run's top m for the skinny kernel: kSkinnyPreferredRows, or VELA_SKINNY_ROWS
// (A/B runs; at most kSkinnyMaxRows).
int64_t skinny_preferred_rows() {
  static const int64_t rows = [] {
    const char* e = std::getenv("VELA_SKINNY_ROWS");
    const int64_t v = e == nullptr ? 0 : std::atoll(e);
    return v > 0 ? std::min(v, kSkinnyMaxRows) : kSkinnyPreferredRows;
  }();
  return rows;
}

class CublasLtGemm final : public Gemm {
 public:
  CublasLtGemm(cublasLtHandle_t handle, void* workspace, size_t workspace_bytes, bool skinny)
      : handle_(handle), workspace_(workspace), workspace_bytes_(workspace_bytes), skinny_(skinny) {}
  ~CublasLtGemm() override {
    plans_.clear();
    if (workspace_) cudaFree(workspace_);
    if (handle_) cublasLtDestroy(handle_);
  }

  Status run(const GemmArgs& args, cudaStream_t stream) override {
    if (args.m == 0) return ok_status();
    const PlanKey key{args.m, args.n, args.k, args.x_row_stride, args.out_row_stride, args.out_f32,
                      args.bias != nullptr, args.in_f32, alignment_of(args.x), alignment_of(args.w), alignment_of(args.out),
                      uint16_t(args.bias ? alignment_of(args.bias) : 0)};
    if (args.m < 0 || args.n <= 0 || args.k <= 0 || args.x_row_stride < args.k || args.out_row_stride < args.n ||
        args.x == nullptr || args.w == nullptr || args.out == nullptr)
      return make_error("bad_gemm", "invalid GEMM arguments: " + shape_text(key));
    // cuBLASLt has no algorithm for a bf16 bias with fp32 output; only the LM head
    // writes fp32 from bf16, and it has no bias. fp32 inputs take an fp32 bias.
    if (!args.in_f32 && args.out_f32 && args.bias != nullptr)
      return make_error("bad_gemm", "a bias with fp32 output is not supported: " + shape_text(key));
    if (args.in_f32 && !args.out_f32)
      return make_error("bad_gemm", "fp32 inputs need an fp32 output: " + shape_text(key));
    // Decode batches of small weights: the wgmma kernel (gemm_skinny.cu). Where it
    // pays, measured (bench_linear_gpu, H200): m <= 64 on matrices of <= 8M weights
    // (Qwen3-0.6B's: 5.4-8.6 us against cuBLASLt's 7.0-14.3), and in W1 with 32
    // sequences (graph steps 1.73 vs 1.81 ms, +4.1% output tok/s). At m = 65-128 it is
    // faster in isolation too (32 vs 40 us a layer) but W1 with it there was even
    // (25,893 vs 25,952 tok/s); at m = 256 even in isolation (41 vs 41 us a layer) and
    // slower in the model (P1's graph steps 4.0-4.3 vs 3.7 ms with VELA_SKINNY_ROWS=256);
    // on Llama-3.1-8B's matrices cuBLASLt is as fast or faster. So the rest stays there.
    if (skinny_ && skinny_gemm_enabled() && args.m <= skinny_preferred_rows() &&
        args.n * args.k <= kSkinnyPreferredWeights && skinny_gemm_supported(args)) {
      if (const cudaError_t e = skinny_gemm(args, stream); e != cudaSuccess)
        return make_error("cuda", std::string("skinny GEMM launch failed: ") + cudaGetErrorString(e) + " for GEMM " +
                                      shape_text(key));
      return ok_status();
    }
    auto it = plans_.find(key);
    if (it == plans_.end()) {
      VELA_TRY_ASSIGN(auto plan, make_plan(key));
      it = plans_.emplace(key, std::move(plan)).first;
    }
    Plan& plan = *it->second;
    if (args.bias != nullptr) {
      const void* bias = args.bias;
      cublasStatus_t s = cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                        sizeof(bias));
      if (s != CUBLAS_STATUS_SUCCESS) return cublas_error("cublasLtMatmulDescSetAttribute(BIAS_POINTER)", s, &key);
    }
    const float alpha = 1.0f, beta = 0.0f;
    cublasStatus_t s = cublasLtMatmul(handle_, plan.desc, &alpha, args.w, plan.a, args.x, plan.b, &beta, args.out,
                                      plan.d, args.out, plan.d, &plan.algo, workspace_, workspace_bytes_, stream);
    if (s != CUBLAS_STATUS_SUCCESS) return cublas_error("cublasLtMatmul", s, &key);
    return ok_status();
  }

 private:
  Result<std::unique_ptr<Plan>> make_plan(const PlanKey& key) {
    auto plan = std::make_unique<Plan>();
    auto fail = [&key](const char* what, cublasStatus_t s) { return cublas_error(what, s, &key); };
    // fp32 accumulation for both input types; with fp32 inputs CUBLAS_COMPUTE_32F is
    // IEEE fp32 products too (TF32 would be CUBLAS_COMPUTE_32F_FAST_TF32, never asked for).
    cublasStatus_t s = cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (s != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatmulDescCreate", s);
    const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
    s = cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof(trans_a));
    if (s != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatmulDescSetAttribute(TRANSA)", s);
    s = cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof(trans_b));
    if (s != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatmulDescSetAttribute(TRANSB)", s);
    if (key.has_bias) {
      const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
      s = cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue));
      if (s != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatmulDescSetAttribute(EPILOGUE)", s);
      // The inputs' type (bf16 also for an fp32 output; the default would be the output's).
      const cudaDataType_t bias_type = key.in_f32 ? CUDA_R_32F : CUDA_R_16BF;
      s = cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                         sizeof(bias_type));
      if (s != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatmulDescSetAttribute(BIAS_DATA_TYPE)", s);
    }
    // Column-major views (rows, cols, ld): A = w as [k, n], B = x as [k, m], D as [n, m].
    const cudaDataType_t in_type = key.in_f32 ? CUDA_R_32F : CUDA_R_16BF;
    s = cublasLtMatrixLayoutCreate(&plan->a, in_type, uint64_t(key.k), uint64_t(key.n), key.k);
    if (s != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatrixLayoutCreate(A=w)", s);
    s = cublasLtMatrixLayoutCreate(&plan->b, in_type, uint64_t(key.k), uint64_t(key.m), key.x_row_stride);
    if (s != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatrixLayoutCreate(B=x)", s);
    s = cublasLtMatrixLayoutCreate(&plan->d, key.out_f32 ? CUDA_R_32F : CUDA_R_16BF, uint64_t(key.n),
                                   uint64_t(key.m), key.out_row_stride);
    if (s != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatrixLayoutCreate(D=out)", s);

    cublasLtMatmulPreference_t pref = nullptr;
    s = cublasLtMatmulPreferenceCreate(&pref);
    if (s != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatmulPreferenceCreate", s);
    struct PrefGuard {
      cublasLtMatmulPreference_t p;
      ~PrefGuard() { cublasLtMatmulPreferenceDestroy(p); }
    } guard{pref};
    const uint64_t ws = workspace_bytes_;
    const uint32_t align_a = key.align_w, align_b = key.align_x, align_d = key.align_out;
    s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
    if (s == CUBLAS_STATUS_SUCCESS)
      s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a,
                                               sizeof(align_a));
    if (s == CUBLAS_STATUS_SUCCESS)
      s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b,
                                               sizeof(align_b));
    if (s == CUBLAS_STATUS_SUCCESS)
      s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_d,
                                               sizeof(align_d));
    if (s == CUBLAS_STATUS_SUCCESS)
      s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_d,
                                               sizeof(align_d));
    if (s != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatmulPreferenceSetAttribute", s);

    cublasLtMatmulHeuristicResult_t results[4] = {};
    int found = 0;
    s = cublasLtMatmulAlgoGetHeuristic(handle_, plan->desc, plan->a, plan->b, plan->d, plan->d, pref, 4, results,
                                       &found);
    if (s != CUBLAS_STATUS_SUCCESS) return fail("cublasLtMatmulAlgoGetHeuristic", s);
    for (int i = 0; i < found; ++i) {
      if (results[i].state == CUBLAS_STATUS_SUCCESS) {
        plan->algo = results[i].algo;
        return plan;
      }
    }
    return make_error("cublas", "cuBLASLt has no algorithm for GEMM " + shape_text(key) + " (heuristic returned " +
                                    std::to_string(found) + " results)");
  }

  cublasLtHandle_t handle_;
  void* workspace_;
  size_t workspace_bytes_;
  bool skinny_;
  std::unordered_map<PlanKey, std::unique_ptr<Plan>, PlanKeyHash> plans_;
};

}  // namespace

Result<std::unique_ptr<Gemm>> Gemm::create(size_t workspace_bytes, bool skinny) {
  cublasLtHandle_t handle = nullptr;
  cublasStatus_t s = cublasLtCreate(&handle);
  if (s != CUBLAS_STATUS_SUCCESS) return cublas_error("cublasLtCreate", s, nullptr);
  void* workspace = nullptr;
  if (workspace_bytes > 0) {
    cudaError_t e = cudaMalloc(&workspace, workspace_bytes);
    if (e != cudaSuccess) {
      cublasLtDestroy(handle);
      return make_error("cuda", "cudaMalloc of the " + std::to_string(workspace_bytes) +
                                    "-byte cuBLASLt workspace failed: " + cudaGetErrorString(e));
    }
  }
  return std::unique_ptr<Gemm>(new CublasLtGemm(handle, workspace, workspace_bytes, skinny));
}

}  // namespace vela::kernels
