#include "workers/persistent_batch.h"

#include <algorithm>

#include "common/hash.h"

namespace vela {

namespace {
Error request_error(const std::string& id, const std::string& what) {
  return make_error("bad_step", "request '" + id + "': " + what);
}
}  // namespace

RequestState* PersistentBatch::lookup(const std::string& id, const std::vector<RequestState*>& hints,
                                      size_t& cursor) {
  if (cursor < hints.size() && hints[cursor]->request_id == id) return hints[cursor++];
  auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : &it->second;
}

Status PersistentBatch::update(const SchedulerOutput& step) {
  if (!step.finished_req_ids.empty()) {
    last_order_.clear();  // the hints may point at erased requests
    step_new_.clear();
    step_cached_.clear();
    for (auto& row : rows_) row.state = nullptr;
  }
  for (const auto& id : step.finished_req_ids) requests_.erase(id);
  step_new_.clear();
  step_cached_.clear();
  // Preempted requests simply stop being scheduled; their state stays until they
  // resume (new blocks, computed count reset) or finish.
  for (const auto& nr : step.scheduled_new_reqs) {
    if (nr.num_computed_tokens < 0 || nr.num_computed_tokens > int32_t(nr.prompt_token_ids.size()))
      return request_error(nr.request_id, "num_computed_tokens " + std::to_string(nr.num_computed_tokens) +
                                              " outside its prompt of " + std::to_string(nr.prompt_token_ids.size()));
    RequestState state;
    state.request_id = nr.request_id;
    state.token_ids = nr.prompt_token_ids;
    state.num_prompt_tokens = int32_t(nr.prompt_token_ids.size());
    state.block_ids = nr.block_ids;
    state.num_computed_tokens = nr.num_computed_tokens;
    state.sampling_params = nr.sampling_params;
    state.seed = nr.sampling_params.seed ? *nr.sampling_params.seed : base_seed_ ^ fnv1a(nr.request_id);
    state.blocks_version = next_blocks_version_++;
    RequestState& slot = requests_[nr.request_id];
    slot = std::move(state);
    step_new_.push_back(&slot);
  }
  const CachedRequestData& cached = step.scheduled_cached_reqs;
  size_t cursor = 0;
  for (size_t i = 0; i < cached.size(); ++i) {
    RequestState* found = lookup(cached.request_ids[i], last_order_, cursor);
    if (!found) return request_error(cached.request_ids[i], "cached request unknown to the worker");
    RequestState& r = *found;
    step_cached_.push_back(found);
    if (i < cached.new_token_ids.size())
      r.token_ids.insert(r.token_ids.end(), cached.new_token_ids[i].begin(), cached.new_token_ids[i].end());
    bool resumed = i < cached.resumed_from_preemption.size() && cached.resumed_from_preemption[i] != 0;
    if (resumed) {
      r.block_ids.clear();
      r.blocks_version = next_blocks_version_++;
    }
    if (i < cached.new_block_ids.size())
      r.block_ids.insert(r.block_ids.end(), cached.new_block_ids[i].begin(), cached.new_block_ids[i].end());
    if (i < cached.num_computed_tokens.size()) r.num_computed_tokens = cached.num_computed_tokens[i];
  }
  return ok_status();
}

Status PersistentBatch::prepare(const SchedulerOutput& step, int32_t block_size, StepInputs& out) {
  out.requests.clear();
  out.num_scheduled.clear();
  out.input_ids.clear();
  out.positions.clear();
  out.slot_mapping.clear();
  out.query_start_loc.assign(1, 0);
  out.seq_lens.clear();
  out.sampled_request_index.clear();
  out.sample_rows.clear();
  out.max_seq_len = 0;
  int32_t max_blocks_needed = 1;
  size_t new_cursor = 0, cached_cursor = 0;
  for (const auto& [id, count] : step.num_scheduled_tokens) {
    // Entries interleave this step's new and cached requests, each in its own order.
    RequestState* found = nullptr;
    if (new_cursor < step_new_.size() && step_new_[new_cursor]->request_id == id) found = step_new_[new_cursor++];
    else found = lookup(id, step_cached_, cached_cursor);
    if (!found) return request_error(id, "scheduled but unknown to the worker");
    RequestState& r = *found;
    int32_t begin = r.num_computed_tokens, end = begin + count;
    if (count <= 0 || end > int32_t(r.token_ids.size()))
      return request_error(id, "scheduled " + std::to_string(count) + " tokens after " + std::to_string(begin) +
                                   " computed, but only " + std::to_string(r.token_ids.size()) + " are known");
    int32_t blocks_needed = (end + block_size - 1) / block_size;
    if (blocks_needed > int32_t(r.block_ids.size()))
      return request_error(id, std::to_string(end) + " tokens need " + std::to_string(blocks_needed) +
                                   " blocks but it has " + std::to_string(r.block_ids.size()));
    for (int32_t pos = begin; pos < end; ++pos) {
      out.input_ids.push_back(r.token_ids[size_t(pos)]);
      out.positions.push_back(pos);
      out.slot_mapping.push_back(int64_t(r.block_ids[size_t(pos / block_size)]) * block_size + pos % block_size);
    }
    if (end == int32_t(r.token_ids.size())) {
      out.sampled_request_index.push_back(int32_t(out.requests.size()));
      out.sample_rows.push_back(int32_t(out.input_ids.size()) - 1);
    }
    out.requests.push_back(&r);
    out.num_scheduled.push_back(count);
    out.query_start_loc.push_back(int32_t(out.input_ids.size()));
    out.seq_lens.push_back(end);
    max_blocks_needed = std::max(max_blocks_needed, blocks_needed);
    out.max_seq_len = std::max(out.max_seq_len, end);
  }
  fill_block_tables(out, max_blocks_needed);
  find_shared_prefix(out, block_size);
  last_order_ = out.requests;
  return ok_status();
}

void PersistentBatch::fill_block_tables(StepInputs& out, int32_t blocks_needed) {
  // The rows describe `out` as it was left last step; another StepInputs, or a wider
  // stride (doubling, so it happens O(log length) times), means rewriting every row.
  if (rows_of_ != &out || blocks_needed > out.max_blocks_per_seq) {
    if (blocks_needed > out.max_blocks_per_seq)
      out.max_blocks_per_seq = std::max(blocks_needed, 2 * out.max_blocks_per_seq);
    rows_.clear();
    rows_of_ = &out;
  }
  const size_t stride = size_t(out.max_blocks_per_seq);
  const size_t num_reqs = out.requests.size();
  out.block_tables.resize(num_reqs * stride);
  rows_.resize(num_reqs);
  for (size_t i = 0; i < num_reqs; ++i) {
    const RequestState& r = *out.requests[i];
    Row& row = rows_[i];
    int32_t* dst = out.block_tables.data() + i * stride;
    const size_t n = std::min(r.block_ids.size(), stride);
    if (row.state == &r && row.version == r.blocks_version && row.written <= n) {
      std::copy(r.block_ids.begin() + ptrdiff_t(row.written), r.block_ids.begin() + ptrdiff_t(n), dst + row.written);
    } else {  // another request in this row (or its blocks were replaced): the whole row
      std::copy_n(r.block_ids.begin(), n, dst);
      std::fill(dst + n, dst + stride, 0);
    }
    row = Row{&r, r.blocks_version, n};
  }
}

void PersistentBatch::find_shared_prefix(StepInputs& out, int32_t block_size) {
  out.shared_prefix_len = out.shared_prefix_seqs = 0;
  // The leading run of one-token sequences (all of them in a pure decode step).
  // VELA_CASCADE_MIXED=0 takes only pure decode steps (A/B runs).
  static const bool mixed_on = [] {
    const char* e = std::getenv("VELA_CASCADE_MIXED");
    return e == nullptr || std::string(e) != "0";
  }();
  size_t n = 0;
  while (n < out.num_scheduled.size() && out.num_scheduled[n] == 1) ++n;
  if (n < size_t(StepInputs::kCascadeMinSeqs)) return;  // too few to pay
  if (n < out.num_scheduled.size() && !mixed_on) return;
  const int32_t min_blocks = (StepInputs::kCascadeMinPrefix + block_size - 1) / block_size;
  // Full blocks every sequence has before its current token; the common run of ids
  // can only shrink from there.
  int32_t blocks = INT32_MAX;
  for (size_t i = 0; i < n; ++i) blocks = std::min(blocks, (out.seq_lens[i] - 1) / block_size);
  const std::vector<int32_t>& first = out.requests[0]->block_ids;
  for (size_t i = 1; i < n && blocks >= min_blocks; ++i) {
    const std::vector<int32_t>& ids = out.requests[i]->block_ids;
    blocks = int32_t(std::mismatch(first.begin(), first.begin() + blocks, ids.begin()).first - first.begin());
  }
  if (blocks < min_blocks) return;
  out.shared_prefix_len = blocks * block_size;
  out.shared_prefix_seqs = int32_t(n);
}

void PersistentBatch::advance(const StepInputs& inputs) {
  for (size_t i = 0; i < inputs.requests.size(); ++i) inputs.requests[i]->num_computed_tokens += inputs.num_scheduled[i];
}

const RequestState* PersistentBatch::find(const std::string& request_id) const {
  auto it = requests_.find(request_id);
  return it == requests_.end() ? nullptr : &it->second;
}

}  // namespace vela
