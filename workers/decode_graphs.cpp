#include "workers/decode_graphs.h"

#include <algorithm>
#include <string>

#ifdef VELA_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace vela {

std::vector<int32_t> decode_graph_sizes(int32_t max_batch) {
  std::vector<int32_t> sizes;
  max_batch = std::min(max_batch, kMaxDecodeGraphBatch);
  for (int32_t b : {1, 2, 4})
    if (b <= max_batch) sizes.push_back(b);
  for (int32_t b = 8; b <= max_batch; b += 8) sizes.push_back(b);
  if (max_batch >= 1 && sizes.back() != max_batch) sizes.push_back(max_batch);
  return sizes;
}

int32_t DecodeGraphs::bucket_for(int32_t num_seqs) const {
  if (num_seqs < 1) return 0;
  auto it = std::lower_bound(entries_.begin(), entries_.end(), num_seqs,
                             [](const Entry& e, int32_t n) { return e.batch < n; });
  return it == entries_.end() ? 0 : it->batch;
}

#ifdef VELA_HAVE_CUDA

namespace {
Error cuda_error(const std::string& what, cudaError_t err) {
  return make_error("cuda_graph", what + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}
}  // namespace

Status DecodeGraphs::capture(int32_t batch, CUstream_st* stream, const std::function<Tensor()>& body,
                             bool node_priority) {
  const std::string at = "CUDA graph of the decode step at batch " + std::to_string(batch);
  if (batch < 1 || bucket_for(batch) == batch) return make_error("cuda_graph", at + ": bad or repeated size");
  cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  // Thread-local mode: an unsafe call on this thread (an allocation, a sync) fails
  // the capture instead of silently running outside the graph.
  cudaError_t err = cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
  if (err != cudaSuccess) return cuda_error(at + ": cudaStreamBeginCapture", err);
  Tensor out = body();
  cudaGraph_t graph = nullptr;
  err = cudaStreamEndCapture(s, &graph);
  if (err != cudaSuccess) {
    if (graph != nullptr) cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    return cuda_error(at + ": the capture was invalidated (something inside synchronised, allocated or used "
                           "another stream); cudaStreamEndCapture",
                      err);
  }
  cudaGraphExec_t exec = nullptr;
  err = cudaGraphInstantiate(&exec, graph, node_priority ? cudaGraphInstantiateFlagUseNodePriority : 0);
  cudaGraphDestroy(graph);  // the executable graph is all a replay needs
  if (err != cudaSuccess) return cuda_error(at + ": cudaGraphInstantiate", err);
  // Upload now, so the first replay does not pay for it.
  err = cudaGraphUpload(exec, s);
  if (err != cudaSuccess) {
    cudaGraphExecDestroy(exec);
    return cuda_error(at + ": cudaGraphUpload", err);
  }
  Entry e;
  e.batch = batch;
  e.exec = exec;
  e.out = std::move(out);
  auto pos = std::lower_bound(entries_.begin(), entries_.end(), batch,
                              [](const Entry& x, int32_t n) { return x.batch < n; });
  entries_.insert(pos, std::move(e));
  return ok_status();
}

Result<Tensor> DecodeGraphs::replay(int32_t batch, CUstream_st* stream) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), batch,
                             [](const Entry& x, int32_t n) { return x.batch < n; });
  if (it == entries_.end() || it->batch != batch)
    return make_error("cuda_graph", "no CUDA graph captured at batch " + std::to_string(batch));
  cudaError_t err = cudaGraphLaunch(static_cast<cudaGraphExec_t>(it->exec), reinterpret_cast<cudaStream_t>(stream));
  if (err != cudaSuccess) return cuda_error("cudaGraphLaunch (decode batch " + std::to_string(batch) + ")", err);
  return it->out;
}

void DecodeGraphs::clear() {
  for (Entry& e : entries_) {
    if (e.exec != nullptr) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(e.exec));
  }
  entries_.clear();
}

#else  // CPU-only build: nothing is ever captured.

Status DecodeGraphs::capture(int32_t batch, CUstream_st*, const std::function<Tensor()>&, bool) {
  return make_error("cuda_graph", "CUDA graph at batch " + std::to_string(batch) + ": this build has no CUDA");
}
Result<Tensor> DecodeGraphs::replay(int32_t batch, CUstream_st*) {
  return make_error("cuda_graph", "no CUDA graph captured at batch " + std::to_string(batch));
}
void DecodeGraphs::clear() { entries_.clear(); }

#endif

}  // namespace vela
