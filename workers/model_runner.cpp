#include "workers/model_runner.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <new>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/logging.h"
#include "model/communicator.h"
#include "model/device.h"
#include "model/forward_batch.h"
#include "model/hf_config.h"
#include "model/models/causal_lm.h"
#include "model/models/registry.h"
#include "model/weights.h"
#include "workers/decode_graphs.h"
#include "workers/device_inputs.h"
#include "workers/memory_profile.h"
#include "workers/persistent_batch.h"
#include "workers/sampler.h"
#include "messages/step_placeholders.h"
#ifdef VELA_HAVE_CUDA
#include "workers/cuda_sampler.h"
#endif

namespace vela {

namespace {

std::string gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / double(1ull << 30));
  return buf;
}

class ModelRunner final : public Runner {
 public:
  ModelRunner(Communicator* comm, const ModelRunnerOptions& options)
      : comm_(comm != nullptr ? comm : &single_rank_), options_(options), log_(logger("worker")) {}

  Result<ProfileResult> load(const LoadModel& request) override;
  Status init_kv_cache(const InitKVCache& request) override;
  Result<ModelRunnerOutput> execute(const SchedulerOutput& step) override;
  Status launch(const SchedulerOutput& step) override;
  Status finish_into(ModelRunnerOutput& out) override;
  void set_lookahead(Lookahead lookahead) override { lookahead_ = std::move(lookahead); }

 private:
  // The step's host inputs: persistent batch update, flat inputs, checks.
  Status prepare_inputs(const SchedulerOutput& step);
  // prepare_inputs for the step after the one running, placeholders and all (their
  // token and input-row slots noted, filled by fill_ahead when the step comes).
  void prepare_ahead(const SchedulerOutput& next);
  Status fill_ahead(const SchedulerOutput& step);
  Result<ProfileResult> load_on_device(const LoadModel& request);
  Status profile_forward(int32_t num_tokens);
  Status capture_decode_graphs();
  // Sampling in two halves around the lookahead: enqueue (rank 0; on the CPU it
  // samples there and then), then collect the tokens into `out`.
  Status sample_enqueue(const Tensor& logits);
  Status sample_collect(ModelRunnerOutput& out);

  SingleRankCommunicator single_rank_;
  Communicator* comm_;
  ModelRunnerOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  // Declared before everything that holds device memory, so it is destroyed last.
  std::unique_ptr<DeviceRuntime> runtime_;
  DeviceContext ctx_;
  HFConfig config_;
  std::unique_ptr<CausalLM> model_;
  std::vector<LayerKVCache> kv_;
  int32_t block_size_ = 16;
  int32_t num_blocks_ = 0;
  int32_t max_model_len_ = 0;
  int32_t max_tokens_ = 0, max_seqs_ = 0;  // the reserved limits (GPU)
  int32_t graph_max_batch_ = 0;            // LoadModel.cuda_graph_max_batch (0: eager)
  bool prefix_caching_ = false;            // LoadModel.prefix_caching: cascade graphs too
  PersistentBatch batch_;
  StepInputs inputs_;
  DeviceInputs device_inputs_;
  Sampler sampler_;
#ifdef VELA_HAVE_CUDA
  std::unique_ptr<CudaSampler> gpu_sampler_;  // GPU: sampling where the logits are
#endif
  std::vector<SampleRow> sample_rows_;
  std::vector<int32_t> sampled_tokens_;
  std::vector<int32_t> sampled_index_;
  StepLogprobs sampled_lp_;             // the CPU sampler's logprobs, until collected
  Tensor pending_logits_;               // what the enqueued draw reads  // the running step's sampled_request_index (inputs_ may move on)
  int32_t sample_top_ = -1;             // its largest logprobs ask (-1: none)
  bool sample_pending_ = false;
  Lookahead lookahead_;
  // A step prepared ahead: its id, whether that worked, and where its placeholders go.
  struct Ahead {
    bool valid = false;
    uint64_t step_id = 0;
    std::optional<Error> error;
    struct Slot {
      size_t cached = 0, index = 0;  // scheduled_cached_reqs.new_token_ids[cached][index]
      RequestState* request = nullptr;
      size_t position = 0;           // in request->token_ids
      int32_t row = -1;              // in inputs_.input_ids, or -1
    };
    std::vector<Slot> slots;
  } ahead_;
  // The step between launch() and finish_into(): its output so far (request ids),
  // when it started, and what finish needs to account for it.
  using Clock = std::chrono::steady_clock;
  static double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  }
  struct Flight {
    ModelRunnerOutput out;
    bool active = false, ran = false;  // ran: it had tokens (a forward and maybe a draw)
    Clock::time_point start, upload_start;
    double host_s = 0;    // time in launch()
    double sample_s = 0;  // of it, in the sampler's enqueue
    int32_t bucket = 0;   // the graph it replayed (0: eager)
  } flight_;
  std::optional<Clock::time_point> last_wait_end_;  // the last step's (stats_.gap_seconds)
  // Declared after the KV cache and the model so that they are destroyed first.
  DecodeGraphs graphs_;
  // Decode steps over a shared prefix (inputs_.shared_prefix_len > 0, cascade attention
  // reading the step's prefix length on the device), sizes kCascadeMinSeqs and up.
  DecodeGraphs cascade_graphs_;
  ModelRunnerStats stats_;

 public:
  const ModelRunnerStats& stats() const { return stats_; }
};

Result<ProfileResult> ModelRunner::load(const LoadModel& request) {
  try {
    return load_on_device(request);
  } catch (const std::bad_alloc& e) {  // device out of memory while loading: an answer, not a crash
    return make_error("out_of_memory", request.model_path + " on " + options_.device + ": " + e.what());
  }
}

Result<ProfileResult> ModelRunner::load_on_device(const LoadModel& request) {
  if (request.tensor_parallel_size != comm_->world_size() || request.tp_rank != comm_->rank())
    return make_error("bad_parallel", "LoadModel asks for rank " + std::to_string(request.tp_rank) + " of " +
                                          std::to_string(request.tensor_parallel_size) + " but the communicator is rank " +
                                          std::to_string(comm_->rank()) + " of " + std::to_string(comm_->world_size()));
  assert(request.block_size_tokens > 0 && "checked by the engine (validate_scheduler_limits)");
  VELA_TRY_ASSIGN(const Device device, parse_device(options_.device));
  VELA_TRY_ASSIGN(runtime_, DeviceRuntime::open(device, request.dtype));
  ctx_ = runtime_->context();
  VELA_TRY_ASSIGN(config_, load_hf_config(request.model_path));
  VELA_TRY_ASSIGN(model_,
                  create_model(config_, ParallelInfo{request.tp_rank, request.tensor_parallel_size}, comm_, ctx_));
  if (request.max_model_len > model_->shape().max_positions)
    return make_error("bad_config", "max_model_len " + std::to_string(request.max_model_len) +
                                        " exceeds the model's max_position_embeddings " +
                                        std::to_string(model_->shape().max_positions));
  max_model_len_ = request.max_model_len > 0 ? request.max_model_len : int32_t(model_->shape().max_positions);
  VELA_TRY_ASSIGN(const DeviceMemory before, runtime_->memory());
  const auto load_start = std::chrono::steady_clock::now();
  std::unique_ptr<WeightSource> weights;
  if (request.load_format == "dummy") {
    weights = make_dummy_weights(request.seed, config_.initializer_range, ctx_);
  } else if (request.load_format == "auto" || request.load_format == "safetensors") {
    VELA_TRY_ASSIGN(weights, open_safetensors_weights(request.model_path, ctx_));
  } else {
    return make_error("bad_config", "load_format '" + request.load_format + "' (supported: auto, safetensors, dummy)");
  }
  VELA_TRY(model_->load_weights(*weights));
  VELA_TRY(runtime_->synchronize());
  // The source's staging buffers (and, for fp32 on a GPU, its bf16 widening scratch)
  // go before the memory profile counts what this process holds.
  weights.reset();
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  batch_.set_base_seed(request.seed);
  block_size_ = request.block_size_tokens;
  const ModelShape& s = model_->shape();
  // On a GPU the load time matters (and is reported); on the CPU it is noise in the demo.
  log_->log(ctx_.is_cuda() ? spdlog::level::info : spdlog::level::debug, "rank {}: {} weights ({}) loaded on {} in {:.2f} s",
            request.tp_rank, request.model_path, gib(model_->weight_bytes()), runtime_->description(), load_s);

  ProfileResult profile;
  profile.rank = request.tp_rank;
  profile.bytes_per_block = kv_bytes_per_block(s.num_layers, s.num_kv_heads, s.head_dim, block_size_, dtype_size(ctx_.dtype));
  profile.vocab_size = int32_t(s.vocab_size);
  profile.eos_token_id = config_.eos_token_ids.empty() ? -1 : config_.eos_token_ids[0];
  if (!ctx_.is_cuda()) {
    profile.kv_cache_bytes_available = cpu_kv_cache_bytes(
        options_.cpu_kv_cache_bytes ? options_.cpu_kv_cache_bytes : request.cpu_kv_cache_bytes,
        request.memory_utilization, model_->weight_bytes());
    return profile;
  }
  // GPU: every activation buffer is reserved once for the engine's limits, then one
  // forward at the largest step shows the kernels run and what is left for KV.
  const int32_t max_tokens = std::max(request.max_num_batched_tokens, 1);
  const int32_t max_seqs = std::max(request.max_num_seqs, 1);
  const int32_t max_blocks = (max_model_len_ + block_size_ - 1) / block_size_;
  max_tokens_ = max_tokens;
  max_seqs_ = max_seqs;
  graph_max_batch_ = std::max(request.cuda_graph_max_batch, 0);
  prefix_caching_ = request.prefix_caching;
  VELA_TRY_ASSIGN(const size_t reserved, model_->reserve(max_tokens, max_seqs));
  VELA_TRY(device_inputs_.init(ctx_, max_tokens, max_seqs, max_blocks, block_size_));
  inputs_.max_blocks_per_seq = max_blocks;  // the fixed row stride of the block tables
#ifdef VELA_HAVE_CUDA
  VELA_TRY_ASSIGN(gpu_sampler_,
                  CudaSampler::create(max_seqs, int32_t(s.vocab_size), reinterpret_cast<cudaStream_t>(ctx_.stream)));
#endif
  VELA_TRY(profile_forward(std::min(max_tokens, max_model_len_)));
  VELA_TRY_ASSIGN(const DeviceMemory after, runtime_->memory());
  profile.kv_cache_bytes_available = gpu_kv_cache_bytes(after.total_bytes, before.free_bytes, after.free_bytes,
                                                        request.memory_utilization);
  log_->info("rank {}: {} of {}: weights {}, activations {} (reserved for {} tokens / {} sequences), "
             "in use after profiling {}, KV cache may take {} ({}% of the card), {:.2f} MiB per block",
             request.tp_rank, runtime_->description(), gib(after.total_bytes), gib(model_->weight_bytes()),
             gib(reserved), max_tokens, max_seqs, gib(after.total_bytes - after.free_bytes),
             gib(profile.kv_cache_bytes_available), int(request.memory_utilization * 100),
             double(profile.bytes_per_block) / double(1 << 20));
  if (profile.kv_cache_bytes_available < profile.bytes_per_block * 2)
    return make_error("no_kv_memory", request.model_path + " on " + runtime_->description() + ": weights " +
                                          gib(model_->weight_bytes()) + " + activations " + gib(reserved) +
                                          " leave " + gib(profile.kv_cache_bytes_available) + " of " +
                                          gib(uint64_t(request.memory_utilization * double(after.total_bytes))) +
                                          " (cache.gpu_memory_utilization) for the KV cache; lower "
                                          "scheduler.max_num_batched_tokens or raise the utilization");
  return profile;
}

// One forward of num_tokens prompt tokens through a throwaway KV cache: every
// kernel and GEMM shape of a prefill step runs once before serving.
Status ModelRunner::profile_forward(int32_t num_tokens) {
  const ModelShape& s = model_->shape();
  const int32_t blocks = (num_tokens + block_size_ - 1) / block_size_ + 1;
  std::vector<LayerKVCache> kv;
  for (int64_t l = 0; l < s.num_layers; ++l)
    kv.push_back({Tensor::zeros({blocks, block_size_, s.num_kv_heads, s.head_dim}, ctx_.dtype, ctx_.device),
                  Tensor::zeros({blocks, block_size_, s.num_kv_heads, s.head_dim}, ctx_.dtype, ctx_.device)});
  StepInputs in;
  in.max_blocks_per_seq = inputs_.max_blocks_per_seq;
  in.requests.assign(1, nullptr);
  in.num_scheduled = {num_tokens};
  in.query_start_loc = {0, num_tokens};
  in.seq_lens = {num_tokens};
  in.max_seq_len = num_tokens;
  in.block_tables.assign(size_t(in.max_blocks_per_seq), 0);
  for (int32_t t = 0; t < num_tokens; ++t) {
    in.input_ids.push_back(t % int32_t(s.vocab_size));
    in.positions.push_back(t);
    in.slot_mapping.push_back(int64_t(block_size_) + t);  // blocks 1.. (0 stays the null block)
  }
  for (int32_t b = 0; b + 1 < blocks && b < in.max_blocks_per_seq; ++b) in.block_tables[size_t(b)] = b + 1;
  in.sample_rows = {num_tokens - 1};
  VELA_TRY_ASSIGN(const ForwardBatch batch, device_inputs_.upload(in));
  Tensor hidden = model_->forward(batch, kv);
  model_->compute_logits(hidden, device_inputs_.sample_rows());
  VELA_TRY(comm_->wait(ctx_.stream));
  return runtime_->synchronize();
}

Status ModelRunner::init_kv_cache(const InitKVCache& request) {
  if (!model_) return make_error("not_loaded", "init_kv_cache before load");
  if (request.num_blocks <= 0)
    return make_error("bad_config", "InitKVCache needs a positive num_blocks, got " + std::to_string(request.num_blocks));
  num_blocks_ = request.num_blocks;
  const ModelShape& s = model_->shape();
  graphs_.clear();  // they point into the KV cache about to be replaced
  cascade_graphs_.clear();
  kv_.clear();
  try {
    for (int64_t l = 0; l < s.num_layers; ++l)
      kv_.push_back({Tensor::zeros({num_blocks_, block_size_, s.num_kv_heads, s.head_dim}, ctx_.dtype, ctx_.device),
                     Tensor::zeros({num_blocks_, block_size_, s.num_kv_heads, s.head_dim}, ctx_.dtype, ctx_.device)});
  } catch (const std::bad_alloc& e) {
    kv_.clear();
    return make_error("out_of_memory", "KV cache of " + std::to_string(num_blocks_) + " blocks: " + e.what());
  }
  if (ctx_.is_cuda() && graph_max_batch_ > 0) {
    try {
      return capture_decode_graphs();
    } catch (const std::bad_alloc& e) {
      graphs_.clear();
      cascade_graphs_.clear();
      return make_error("out_of_memory", "capturing decode CUDA graphs on " + runtime_->description() + ": " +
                                             e.what() + " (model.enforce_eager: true runs without them)");
    }
  }
  return ok_status();
}

// The decode graphs, captured once the KV cache exists (their kernels hold its
// addresses): for each size, the inputs of an all-padding batch are uploaded, the
// forward + logits run once eagerly (every kernel loaded and every GEMM shape
// planned, so nothing inside the capture allocates or searches), then the same
// launches are captured. Per step only the inputs' copy runs outside the graph.
// With prefix caching, a second set at the sizes from kCascadeMinSeqs up serves
// decode steps over a shared prefix (their attention reads the prefix's length
// from the inputs' buffer: kernels/attention.h, shared_prefix_len_device).
Status ModelRunner::capture_decode_graphs() {
  const auto sizes = decode_graph_sizes(std::min({graph_max_batch_, max_seqs_, max_tokens_}));
  if (sizes.empty()) return ok_status();
  VELA_TRY(runtime_->synchronize());
  VELA_TRY_ASSIGN(const DeviceMemory before, runtime_->memory());
  const auto start = std::chrono::steady_clock::now();
  StepInputs padding;  // no real sequence: every row is padding
  padding.max_blocks_per_seq = inputs_.max_blocks_per_seq;
  padding.query_start_loc = {0};
  auto stream = ctx_.stream;
  auto capture_set = [&](DecodeGraphs& set, bool cascade) -> Status {
    for (auto it = sizes.rbegin(); it != sizes.rend(); ++it) {
      const int32_t b = *it;
      if (cascade && b < StepInputs::kCascadeMinSeqs) continue;  // such steps never share a prefix
      VELA_TRY_ASSIGN(const ForwardBatch batch, device_inputs_.upload(padding, b, cascade));
      auto body = [&] {
        Tensor hidden = model_->forward(batch, kv_);
        return model_->compute_logits(hidden, device_inputs_.sample_rows());
      };
      const std::string what = std::string(cascade ? "cascade " : "") + "decode step at batch " + std::to_string(b);
      body();  // warm-up
      if (auto synced = runtime_->synchronize(); !synced)
        return make_error("cuda_graph", "warm-up of the " + what + " before its capture: " + synced.error().message);
      auto captured = set.capture(b, stream, body, /*node_priority=*/ctx_.side_stream != nullptr);
      if (!captured)
        return make_error(captured.error().code, runtime_->description() + ": " + what + ": " +
                                                     captured.error().message +
                                                     " (model.enforce_eager: true runs without graphs)");
    }
    return ok_status();
  };
  // VELA_CASCADE_GRAPHS=0 leaves cascade steps eager (A/B runs).
  static const bool cascade_graphs_on = [] {
    const char* e = std::getenv("VELA_CASCADE_GRAPHS");
    return e == nullptr || std::string(e) != "0";
  }();
  Status captured = capture_set(graphs_, false);
  if (captured && prefix_caching_ && cascade_graphs_on) captured = capture_set(cascade_graphs_, true);
  if (!captured) {
    graphs_.clear();
    cascade_graphs_.clear();
    return captured;
  }
  VELA_TRY(runtime_->synchronize());
  VELA_TRY_ASSIGN(const DeviceMemory after, runtime_->memory());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const uint64_t used = before.free_bytes > after.free_bytes ? before.free_bytes - after.free_bytes : 0;
  stats_.graphs_captured = int32_t(graphs_.size() + cascade_graphs_.size());
  stats_.cascade_graphs_captured = int32_t(cascade_graphs_.size());
  stats_.capture_seconds = seconds;
  stats_.graph_bytes = used;
  log_->info("rank {}: captured {} decode CUDA graphs (batch sizes 1..{}; {} of them for steps over a shared "
             "prefix) in {:.2f} s, {:.1f} MiB of device memory; decode steps of up to {} sequences replay them "
             "(model.enforce_eager: true turns them off)",
             comm_->rank(), graphs_.size() + cascade_graphs_.size(), graphs_.largest(), cascade_graphs_.size(),
             seconds, double(used) / double(1 << 20), graphs_.largest());
  return ok_status();
}

Status ModelRunner::sample_enqueue(const Tensor& logits) {
  sample_rows_.clear();
  sample_top_ = -1;
  for (int32_t i : inputs_.sampled_request_index) {
    const RequestState& r = *inputs_.requests[size_t(i)];
    std::span<const int32_t> all(r.token_ids);
    sample_rows_.push_back({&r.sampling_params, r.seed, all.first(size_t(r.num_prompt_tokens)),
                            all.subspan(size_t(r.num_prompt_tokens))});
    sample_top_ = std::max(sample_top_, r.sampling_params.logprobs);
  }
  sampled_index_ = inputs_.sampled_request_index;
  sample_pending_ = true;
  pending_logits_ = logits;  // kept alive (and its buffer unreused) until collected
#ifdef VELA_HAVE_CUDA
  if (ctx_.is_cuda()) return gpu_sampler_->enqueue(logits, sample_rows_, sample_top_, sample_top_ >= 0);
#endif
  sampled_lp_ = StepLogprobs{};
  sampled_lp_.num_top = sample_top_;
  sampler_.sample(logits, sample_rows_, sample_top_, sampled_tokens_, sample_top_ >= 0 ? &sampled_lp_ : nullptr);
  return ok_status();
}

Status ModelRunner::sample_collect(ModelRunnerOutput& out) {
  if (!sample_pending_) return ok_status();
  sample_pending_ = false;
  pending_logits_ = Tensor();
  StepLogprobs* lp = sample_top_ >= 0 ? &out.logprobs : nullptr;
  if (lp != nullptr) lp->num_top = sample_top_;
#ifdef VELA_HAVE_CUDA
  if (ctx_.is_cuda()) {  // only token ids (and the logprobs asked for) come back
    VELA_TRY(gpu_sampler_->collect(sampled_tokens_, lp));
  } else
#endif
  if (lp != nullptr) {
    *lp = std::move(sampled_lp_);
  }
  for (size_t j = 0; j < sampled_index_.size(); ++j)
    out.sampled_token_ids[size_t(sampled_index_[j])].push_back(sampled_tokens_[j]);
  if (lp != nullptr) {
    // Rows follow the requests' order; a request not sampled this step has none.
    int32_t row = 0;
    for (const auto& tokens : out.sampled_token_ids) {
      lp->row_offsets.push_back(row);
      row += int32_t(tokens.size());
    }
  }
  return ok_status();
}

Status ModelRunner::prepare_inputs(const SchedulerOutput& step) {
  VELA_TRY(batch_.update(step));
  VELA_TRY(batch_.prepare(step, block_size_, inputs_));
  for (size_t i = 0; i < inputs_.requests.size(); ++i) {
    const RequestState& r = *inputs_.requests[i];
    if (inputs_.seq_lens[i] > model_->shape().max_positions)
      return make_error("bad_step", "request '" + r.request_id + "': " + std::to_string(inputs_.seq_lens[i]) +
                                        " tokens exceed max_position_embeddings");
    for (int32_t b : r.block_ids)
      if (b < 0 || b >= num_blocks_)
        return make_error("bad_step", "request '" + r.request_id + "': block id " + std::to_string(b) +
                                          " outside the pool of " + std::to_string(num_blocks_));
  }
  return ok_status();
}

void ModelRunner::prepare_ahead(const SchedulerOutput& next) {
  const auto start = std::chrono::steady_clock::now();
  ahead_ = Ahead{};
  ahead_.step_id = next.step_id;
  ahead_.valid = true;
  if (Status prepared = prepare_inputs(next); !prepared) {
    ahead_.error = prepared.error();
    return;
  }
  // Where each placeholder landed: the end of its request's token_ids (update appended
  // the step's new tokens there) and, when it is an input this step, its input row.
  std::unordered_map<const RequestState*, size_t> index;
  const CachedRequestData& cached = next.scheduled_cached_reqs;
  for (size_t i = 0; i < cached.new_token_ids.size() && i < cached.request_ids.size(); ++i) {
    const std::vector<int32_t>& tokens = cached.new_token_ids[i];
    for (size_t j = 0; j < tokens.size(); ++j) {
      if (tokens[j] != kPlaceholderToken) continue;
      if (index.empty())
        for (size_t k = 0; k < inputs_.requests.size(); ++k) index.emplace(inputs_.requests[k], k);
      const RequestState* found = batch_.find(cached.request_ids[i]);
      auto it = index.find(found);
      if (it == index.end()) {
        ahead_.error = make_error("bad_placeholder", "request '" + cached.request_ids[i] +
                                                         "': a placeholder for a request not scheduled in step " +
                                                         std::to_string(next.step_id));
        return;
      }
      Ahead::Slot slot;
      slot.cached = i;
      slot.index = j;
      slot.request = inputs_.requests[it->second];
      slot.position = slot.request->token_ids.size() - tokens.size() + j;
      const size_t k = it->second;
      const int32_t first = inputs_.seq_lens[k] - inputs_.num_scheduled[k];  // first position computed
      if (int32_t(slot.position) >= first && int32_t(slot.position) < inputs_.seq_lens[k])
        slot.row = inputs_.query_start_loc[k] + (int32_t(slot.position) - first);
      ahead_.slots.push_back(slot);
    }
  }
  ++stats_.ahead_steps;
  stats_.ahead_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Status ModelRunner::fill_ahead(const SchedulerOutput& step) {
  ahead_.valid = false;
  if (ahead_.error) return *ahead_.error;
  const CachedRequestData& cached = step.scheduled_cached_reqs;
  for (const Ahead::Slot& slot : ahead_.slots) {
    if (slot.cached >= cached.new_token_ids.size() || slot.index >= cached.new_token_ids[slot.cached].size())
      return make_error("bad_placeholder", "step " + std::to_string(step.step_id) +
                                               " no longer matches the step prepared ahead");
    const int32_t token = cached.new_token_ids[slot.cached][slot.index];
    if (token < 0)
      return make_error("bad_placeholder", "step " + std::to_string(step.step_id) + ": request '" +
                                               slot.request->request_id + "' still has a placeholder");
    slot.request->token_ids[slot.position] = token;
    if (slot.row >= 0) inputs_.input_ids[size_t(slot.row)] = token;
  }
  return ok_status();
}

Status ModelRunner::launch(const SchedulerOutput& step) {
  const auto start = Clock::now();
  if (kv_.empty()) return make_error("not_initialised", "execute before init_kv_cache");
  if (flight_.active)
    return make_error("bad_step", "step " + std::to_string(step.step_id) + " launched before step " +
                                      std::to_string(flight_.out.step_id) + " was finished");
  if (ahead_.valid && ahead_.step_id == step.step_id) {
    VELA_TRY(fill_ahead(step));  // built while the step before ran; now its placeholders
  } else {
    if (ahead_.valid) {  // the driver dropped the step it showed (e.g. it failed before running)
      ahead_.valid = false;
      return make_error("bad_step", "step " + std::to_string(step.step_id) + " arrived after step " +
                                        std::to_string(ahead_.step_id) + " was prepared ahead");
    }
    VELA_TRY(prepare_inputs(step));
  }
  Flight& f = flight_;
  f = Flight{};
  f.start = start;
  ModelRunnerOutput& out = f.out;
  out.step_id = step.step_id;
  out.request_ids.reserve(inputs_.requests.size());
  for (const RequestState* r : inputs_.requests) out.request_ids.push_back(r->request_id);
  out.sampled_token_ids.resize(inputs_.requests.size());
  if (inputs_.num_tokens() > 0) {
    f.ran = true;
    f.upload_start = Clock::now();
    if (last_wait_end_) {
      stats_.gap_seconds += std::chrono::duration<double>(f.upload_start - *last_wait_end_).count();
      ++stats_.gaps;
    }
    auto timed_enqueue = [&](const Tensor& logits) {
      const auto t = Clock::now();
      auto enqueued = sample_enqueue(logits);
      f.sample_s += seconds_since(t);
      return enqueued;
    };
    // A pure decode step (one token per sequence) that a captured graph holds replays
    // it, padded: over a shared prefix (cascade attention) one of the cascade graphs,
    // which read the prefix's length with the other inputs; anything else launches op
    // by op. Every rank decides alike (the same step), so collectives inside the
    // graphs pair up.
    const int32_t num_seqs = int32_t(inputs_.requests.size());
    const bool decode = inputs_.num_tokens() == num_seqs;
    const bool cascade = inputs_.shared_prefix_len > 0;
    DecodeGraphs& set = cascade ? cascade_graphs_ : graphs_;
    f.bucket = decode ? set.bucket_for(num_seqs) : 0;
    if (f.bucket > 0) {
      VELA_TRY(device_inputs_.upload(inputs_, f.bucket, cascade));
      stats_.prep_seconds += std::chrono::duration<double>(f.upload_start - start).count();
      VELA_TRY_ASSIGN(const Tensor logits, set.replay(f.bucket, ctx_.stream));
      ++stats_.graph_steps;
      if (cascade) ++stats_.cascade_graph_steps;
      if (!inputs_.sample_rows.empty() && comm_->rank() == 0) {
        // The sampler waits for its tokens; with peers, wait for the gathered logits
        // under the communicator's watch first, so a dead peer cannot hang it.
        if (comm_->world_size() > 1) VELA_TRY(comm_->wait(ctx_.stream));
        // The graph computed logits for every padded row; the real ones come first.
        VELA_TRY(timed_enqueue(logits.narrow(0, 0, int64_t(inputs_.sample_rows.size()))));
      }
    } else {
      VELA_TRY_ASSIGN(const ForwardBatch batch, device_inputs_.upload(inputs_));
      stats_.prep_seconds += std::chrono::duration<double>(f.upload_start - start).count();
      Tensor hidden = model_->forward(batch, kv_);
      ++stats_.eager_steps;
      stats_.eager_tokens += uint64_t(inputs_.num_tokens());
      if (!inputs_.sample_rows.empty()) {
        // Every rank takes part (the logits are all-gathered); rank 0 samples.
        Tensor logits = model_->compute_logits(hidden, device_inputs_.sample_rows());
        if (comm_->rank() == 0) {
          if (comm_->world_size() > 1) VELA_TRY(comm_->wait(ctx_.stream));
          VELA_TRY(timed_enqueue(logits));
        }
      }
    }
  }
  // The scheduled tokens are in the KV cache once this step's work is done; the next
  // step's inputs (built in finish(), if the driver already has that step) count on it.
  batch_.advance(inputs_);
  f.active = true;
  f.host_s = seconds_since(start);
  return ok_status();
}

Status ModelRunner::finish_into(ModelRunnerOutput& result) {
  if (!flight_.active) return make_error("not_launched", "finish without a launched step");
  Flight& f = flight_;
  f.active = false;
  const auto finish_start = Clock::now();
  ModelRunnerOutput& out = f.out;
  if (f.ran) {
    // While the device runs this step: the next step's host inputs. The driver
    // usually sends it a little after this step started (it schedules it when the
    // step before's output arrives), so ask again while the device is still busy,
    // for 20 ms at most: past that the step is long enough not to need it, and a
    // collective whose peer died must reach comm_->wait, which notices.
    double ahead_s = 0, poll_s = 0;  // poll: asking while the device runs (counted as wait)
    if (lookahead_) {
      const auto poll_start = Clock::now();
      const SchedulerOutput* next = lookahead_();
      while (next == nullptr && runtime_->busy() && seconds_since(poll_start) < 0.02) {
        std::this_thread::yield();
        next = lookahead_();
      }
      poll_s = seconds_since(poll_start);
      if (next != nullptr && next->step_id != out.step_id) {
        const auto t = Clock::now();
        prepare_ahead(*next);
        ahead_s = seconds_since(t);
      }
    }
    // The sampled tokens, then the end of the step: the next step reuses the staging
    // buffer and must see this step's KV (a no-op on the CPU; on the GPU it also
    // surfaces a kernel's fault here). A device communicator waits first, watching its
    // peers: one that died or stopped fails the step instead of hanging it.
    const auto collect_start = Clock::now();
    VELA_TRY(sample_collect(out));
    const double collect_s = seconds_since(collect_start);
    const auto wait_start = Clock::now();
    VELA_TRY(comm_->wait(ctx_.stream));
    VELA_TRY(runtime_->synchronize());
    last_wait_end_ = Clock::now();
    const double wait_s = std::chrono::duration<double>(*last_wait_end_ - wait_start).count();
    // The runner's time on the step (its two halves; what the driver did between them
    // ran beside the device), less the next step's inputs built ahead.
    const double finish_s = seconds_since(finish_start);
    const double launch_half = f.host_s - std::chrono::duration<double>(f.upload_start - f.start).count();
    (f.bucket > 0 ? stats_.graph_step_seconds : stats_.eager_step_seconds) += launch_half + finish_s - ahead_s;
    // Launch: from the upload to the final wait, less the sampler (enqueue + its wait),
    // the lookahead and the time between the halves.
    const double finish_other =
        std::chrono::duration<double>(wait_start - finish_start).count() - collect_s - ahead_s - poll_s;
    stats_.launch_seconds += launch_half - f.sample_s + finish_other;
    stats_.wait_seconds += wait_s + f.sample_s + collect_s + poll_s;
  }
  out.execute_time_ns = int64_t((f.host_s + seconds_since(finish_start)) * 1e9);
  stats_.execute_seconds += double(out.execute_time_ns) * 1e-9;
  std::swap(result, out);
  return ok_status();
}

Result<ModelRunnerOutput> ModelRunner::execute(const SchedulerOutput& step) {
  VELA_TRY(launch(step));
  ModelRunnerOutput out;
  VELA_TRY(finish_into(out));
  return out;
}

}  // namespace

std::unique_ptr<Runner> make_model_runner(Communicator* comm) { return make_model_runner(comm, {}); }

std::unique_ptr<Runner> make_model_runner(Communicator* comm, const ModelRunnerOptions& options) {
  return std::make_unique<ModelRunner>(comm, options);
}

std::optional<ModelRunnerStats> model_runner_stats(const Runner& runner) {
  if (const auto* r = dynamic_cast<const ModelRunner*>(&runner)) return r->stats();
  return std::nullopt;
}

}  // namespace vela
