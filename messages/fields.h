#pragma once
// Field lists of every wire struct, in wire order. One list serves encode and
// decode. New fields go at the end: a decoder fills fields missing from an older
// sender with their defaults and ignores trailing fields from a newer one.
// V provides operator()(name, field) for ordinary fields and blob(name, vector)
// for bulk arrays that travel in extra frames.
#include "messages/engine_core_output.h"
#include "messages/engine_core_request.h"
#include "messages/model_runner_output.h"
#include "messages/scheduler_output.h"
#include "messages/worker_control.h"

namespace vela::msg {

template <class V> void fields(V& v, SamplingParams& x) {
  v("n", x.n); v("temperature", x.temperature); v("top_p", x.top_p); v("top_k", x.top_k);
  v("min_p", x.min_p); v("seed", x.seed); v("max_tokens", x.max_tokens);
  v("min_tokens", x.min_tokens); v("stop", x.stop); v("stop_token_ids", x.stop_token_ids);
  v("ignore_eos", x.ignore_eos); v("logprobs", x.logprobs);
  v("presence_penalty", x.presence_penalty); v("frequency_penalty", x.frequency_penalty);
  v("repetition_penalty", x.repetition_penalty);
}
template <class V> void fields(V& v, EngineCoreRequest& x) {
  v("request_id", x.request_id); v("prompt_token_ids", x.prompt_token_ids);
  v("sampling_params", x.sampling_params); v("arrival_time", x.arrival_time);
  v("priority", x.priority); v("eos_token_id", x.eos_token_id);
}
template <class V> void fields(V& v, AbortRequests& x) { v("request_ids", x.request_ids); }
template <class V> void fields(V& v, TokenLogprobs& x) {
  v("token_id", x.token_id); v("logprob", x.logprob); v("top_ids", x.top_ids);
  v("top_logprobs", x.top_logprobs);
}
template <class V> void fields(V& v, EngineCoreOutput& x) {
  v("request_id", x.request_id); v("new_token_ids", x.new_token_ids);
  v("finish_reason", x.finish_reason); v("stop_token_id", x.stop_token_id);
  v("logprobs", x.logprobs); v("num_cached_tokens", x.num_cached_tokens); v("error", x.error);
}
template <class V> void fields(V& v, EngineCoreOutputs& x) {
  v("engine_index", x.engine_index); v("outputs", x.outputs); v("timestamp_ns", x.timestamp_ns);
}
template <class V> void fields(V& v, NewRequestData& x) {
  v("request_id", x.request_id); v("prompt_token_ids", x.prompt_token_ids);
  v("sampling_params", x.sampling_params); v("block_ids", x.block_ids);
  v("num_computed_tokens", x.num_computed_tokens);
}
template <class V> void fields(V& v, CachedRequestData& x) {
  v("request_ids", x.request_ids); v("resumed_from_preemption", x.resumed_from_preemption);
  v("new_token_ids", x.new_token_ids); v("new_block_ids", x.new_block_ids);
  v("num_computed_tokens", x.num_computed_tokens);
}
template <class V> void fields(V& v, SchedulerOutput& x) {
  v("step_id", x.step_id); v("scheduled_new_reqs", x.scheduled_new_reqs);
  v("scheduled_cached_reqs", x.scheduled_cached_reqs);
  v("num_scheduled_tokens", x.num_scheduled_tokens);
  v("total_num_scheduled_tokens", x.total_num_scheduled_tokens);
  v("finished_req_ids", x.finished_req_ids); v("preempted_req_ids", x.preempted_req_ids);
}
template <class V> void fields(V& v, StepLogprobs& x) {
  v("num_top", x.num_top); v("row_offsets", x.row_offsets);
  v.blob("sampled_logprobs", x.sampled_logprobs); v.blob("top_ids", x.top_ids);
  v.blob("top_logprobs", x.top_logprobs);
}
template <class V> void fields(V& v, ModelRunnerOutput& x) {
  v("step_id", x.step_id); v("request_ids", x.request_ids);
  v("sampled_token_ids", x.sampled_token_ids); v("logprobs", x.logprobs);
  v("execute_time_ns", x.execute_time_ns);
}
template <class V> void fields(V& v, Hello& x) {
  v("rank", x.rank); v("pid", x.pid); v("device", x.device);
  v("total_memory_bytes", x.total_memory_bytes); v("free_memory_bytes", x.free_memory_bytes);
  v("dist_init_address", x.dist_init_address);
}
template <class V> void fields(V& v, LoadModel& x) {
  v("model_path", x.model_path); v("load_format", x.load_format); v("dtype", x.dtype);
  v("max_model_len", x.max_model_len); v("max_num_batched_tokens", x.max_num_batched_tokens);
  v("max_num_seqs", x.max_num_seqs); v("block_size_tokens", x.block_size_tokens);
  v("memory_utilization", x.memory_utilization);
  v("tensor_parallel_size", x.tensor_parallel_size); v("tp_rank", x.tp_rank);
  v("dist_init_address", x.dist_init_address); v("seed", x.seed);
  v("cpu_kv_cache_bytes", x.cpu_kv_cache_bytes);
  v("cuda_graph_max_batch", x.cuda_graph_max_batch);
  v("prefix_caching", x.prefix_caching);
}
template <class V> void fields(V& v, ProfileResult& x) {
  v("rank", x.rank); v("kv_cache_bytes_available", x.kv_cache_bytes_available);
  v("bytes_per_block", x.bytes_per_block); v("vocab_size", x.vocab_size);
  v("eos_token_id", x.eos_token_id);
}
template <class V> void fields(V& v, InitKVCache& x) {
  v("num_blocks", x.num_blocks);
}
template <class V> void fields(V& v, Heartbeat& x) { v("rank", x.rank); v("sequence", x.sequence); }
template <class V> void fields(V& v, Shutdown& x) { v("reason", x.reason); }
template <class V> void fields(V& v, ErrorMessage& x) {
  v("rank", x.rank); v("code", x.code); v("message", x.message); v("request_id", x.request_id);
}
template <class V> void fields(V& v, Ack& x) { v("rank", x.rank); v("of_id", x.of_id); }

}  // namespace vela::msg
