#include "engine_core/request.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace vela {

const char* request_status_name(RequestStatus status) {
  switch (status) {
    case RequestStatus::kWaiting: return "WAITING";
    case RequestStatus::kRunning: return "RUNNING";
    case RequestStatus::kPreempted: return "PREEMPTED";
    case RequestStatus::kFinishedStopped: return "FINISHED_STOPPED";
    case RequestStatus::kFinishedLength: return "FINISHED_LENGTH";
    case RequestStatus::kFinishedAborted: return "FINISHED_ABORTED";
  }
  return "?";
}

bool is_finished(RequestStatus status) {
  return status == RequestStatus::kFinishedStopped || status == RequestStatus::kFinishedLength ||
         status == RequestStatus::kFinishedAborted;
}

bool is_valid_transition(RequestStatus from, RequestStatus to) {
  using S = RequestStatus;
  if (is_finished(from)) return false;
  switch (to) {
    case S::kWaiting: return false;  // only the initial status
    case S::kRunning: return from == S::kWaiting || from == S::kPreempted;
    case S::kPreempted: return from == S::kRunning;
    case S::kFinishedStopped:
    case S::kFinishedLength: return from == S::kRunning;
    case S::kFinishedAborted: return true;
  }
  return false;
}

FinishReason finish_reason_of(RequestStatus status) {
  switch (status) {
    case RequestStatus::kFinishedStopped: return FinishReason::kStop;
    case RequestStatus::kFinishedLength: return FinishReason::kLength;
    case RequestStatus::kFinishedAborted: return FinishReason::kAbort;
    default: return FinishReason::kNone;
  }
}

Request::Request(EngineCoreRequest request, int32_t slot, uint64_t arrival_seq)
    : request_id_(std::move(request.request_id)),
      slot_(slot),
      arrival_seq_(arrival_seq),
      arrival_time_(request.arrival_time),
      priority_(request.priority),
      eos_token_id_(request.eos_token_id),
      sampling_params_(std::move(request.sampling_params)),
      token_ids_(std::move(request.prompt_token_ids)),
      num_prompt_tokens_(static_cast<int32_t>(token_ids_.size())) {
  // Room for every output token without reallocating on the decode path.
  token_ids_.reserve(token_ids_.size() + static_cast<size_t>(std::max(sampling_params_.max_tokens, 0)));
}

void Request::set_status(RequestStatus status) {
  assert(is_valid_transition(status_, status) && "invalid request status transition");
  status_ = status;
}

void Request::update_block_hashes(int32_t block_size_tokens, uint64_t seed) {
  const size_t num_full_blocks = token_ids_.size() / static_cast<size_t>(block_size_tokens);
  if (block_hashes_.capacity() == 0)
    block_hashes_.reserve(token_ids_.capacity() / static_cast<size_t>(block_size_tokens));
  while (block_hashes_.size() < num_full_blocks) {
    const size_t i = block_hashes_.size();
    const BlockHash parent = i == 0 ? kRootBlockHash : block_hashes_[i - 1];
    const std::span<const int32_t> tokens(token_ids_.data() + i * static_cast<size_t>(block_size_tokens),
                                          static_cast<size_t>(block_size_tokens));
    block_hashes_.push_back(hash_block(parent, tokens, hash_extra_, seed));
  }
}

}  // namespace vela
