// DetokenizerActor: the text side of the requests pinned to it, on a thread of its
// own. Engine outputs -> TextOutput (incremental detokenization, stop strings,
// held-back text) -> delta and final events, sent straight to the client. The
// frontend keeps frontend.detokenizer_threads of them and pins each request to the
// one with the fewest, so one request's events stay in order (one mailbox, one
// thread) while different requests' text is made in parallel, and a request whose
// text is slow to make (long stop strings, a huge stream) holds up only the
// requests pinned beside it.
//
// Exactly one final per request: a request leaves `requests` when its final is made
// (the engine finished it, a stop string matched, or the server cut it off), and
// later outputs for it find nothing. The frontend hears of it (DetokenizedMsg)
// before the final goes out, so a client that reuses the id after its final is
// never refused as "in flight".
#include <unordered_map>

#include "actors/engine_actors.h"
#include "actors/event_route.h"
#include "common/clock.h"
#include "llm/text_output.h"
#include "metrics/serve_metrics.h"

namespace vela::actors {
namespace {

using client::ServerEvent;

struct StreamingRequest {
  std::string identity;           // the client's connection
  std::string client_request_id;
  bool stream = true;
  std::vector<int32_t> prompt_token_ids;
  TextOutput output;              // tokens, detokenized text, stop strings, held-back text
  bool wants_logprobs = false;    // params.logprobs >= 0
  std::vector<TokenLogprobs> logprobs;  // one per entry of output.token_ids() (when wanted)
  int64_t arrival_ns = 0;         // wall clock at the frontend (TTFT, end-to-end latency)
  int64_t first_token_ns = 0;     // 0 until the first output token
};

struct DetokenizerState {
  DetokenizerSettings settings;
  std::optional<frontend_actor> frontend;
  EventRoute route;
  std::unordered_map<std::string, StreamingRequest> requests;  // by engine request id
};

using Self = detokenizer_actor::stateful_pointer<DetokenizerState>;

// An event, and whom it goes to, made while handling one message and sent at its end.
using Outgoing = std::vector<std::pair<std::string, ServerEvent>>;

const char* finish_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kError: return "error";
    default: return "";
  }
}

// Latency figures of a request that ends now (ServeMetrics).
void count_finished(const DetokenizerState& st, const StreamingRequest& r, const std::string& reason) {
  auto* m = st.settings.metrics;
  if (!m) return;
  const int64_t now = wall_time_ns();
  const auto num_tokens = static_cast<int64_t>(r.output.token_ids().size());
  const double tpot = num_tokens >= 2 && r.first_token_ns > 0
                          ? static_cast<double>(now - r.first_token_ns) * 1e-9 / static_cast<double>(num_tokens - 1)
                          : -1.0;
  m->request_finished(reason, num_tokens, static_cast<double>(now - r.arrival_ns) * 1e-9, tpot);
}

// Sends `ended` to the frontend (when it names any request), then the events: the
// frontend forgets a request before its client can see the final.
void flush(Self self, DetokenizedMsg& ended, Outgoing& out) {
  auto& st = self->state;
  if ((!ended.finished.empty() || !ended.stopped.empty()) && st.frontend) self->send(*st.frontend, std::move(ended));
  for (auto& [identity, ev] : out) send_event(st.route, identity, std::move(ev));
}

// One engine output of request `it`: its delta (streaming, when there is something
// new) or its final, appended to `out`. A final erases the request and names it in
// `ended`.
void on_output(Self self, std::unordered_map<std::string, StreamingRequest>::iterator it, EngineCoreOutput& o,
               DetokenizedMsg& ended, Outgoing& out) {
  auto& st = self->state;
  StreamingRequest& r = it->second;
  const size_t first_new = r.output.token_ids().size();
  if (r.first_token_ns == 0 && !o.new_token_ids.empty()) {
    r.first_token_ns = wall_time_ns();
    if (st.settings.metrics)
      st.settings.metrics->first_token(static_cast<double>(r.first_token_ns - r.arrival_ns) * 1e-9);
  }
  FinishReason finish = o.finish_reason;
  std::string stop_reason = o.stop_token_id ? std::to_string(*o.stop_token_id) : "";
  const bool was_stopped = r.output.stopped();
  auto stop = r.output.append(o.new_token_ids);
  if (r.wants_logprobs && !was_stopped)  // kept beside the tokens TextOutput kept
    r.logprobs.insert(r.logprobs.end(), std::make_move_iterator(o.logprobs.begin()),
                      std::make_move_iterator(o.logprobs.end()));
  // The logprobs of token_ids()[begin, end): the engine sends one per token when asked.
  auto logprobs_of = [&r](size_t begin, size_t end) {
    begin = std::min(begin, r.logprobs.size());
    end = std::min(end, r.logprobs.size());
    return std::vector<TokenLogprobs>(r.logprobs.begin() + static_cast<ptrdiff_t>(begin),
                                      r.logprobs.begin() + static_cast<ptrdiff_t>(end));
  };
  bool stopped_before_engine = false;
  if (stop && finish != FinishReason::kError) {
    // The text ends before the stop string, even when the engine also finished this step.
    stopped_before_engine = finish == FinishReason::kNone;  // the frontend aborts it there (frees its KV blocks)
    finish = FinishReason::kStop;
    stop_reason = std::move(*stop);
  }
  ServerEvent ev;
  ev.request_id = r.client_request_id;
  if (finish == FinishReason::kNone) {
    if (!r.stream) return;
    ev.kind = ServerEvent::Kind::kDelta;
    ev.token_ids = std::move(o.new_token_ids);
    if (r.wants_logprobs) ev.logprobs = logprobs_of(first_new, first_new + ev.token_ids.size());
    ev.text = r.output.take_streamable();
    if (ev.token_ids.empty() && ev.text.empty()) return;
    out.emplace_back(r.identity, std::move(ev));
    return;
  }
  const auto& all = r.output.token_ids();
  ev.kind = ServerEvent::Kind::kFinal;
  ev.finish_reason = finish_name(finish);
  ev.stop_reason = stop_reason;
  ev.num_prompt_tokens = static_cast<int32_t>(r.prompt_token_ids.size());
  ev.prompt_token_ids = std::move(r.prompt_token_ids);
  ev.num_output_tokens = static_cast<int32_t>(all.size());
  ev.num_cached_tokens = o.num_cached_tokens;
  ev.message = o.error;
  // Streaming: what no delta carried yet; otherwise everything (nothing was taken).
  const size_t first_unsent = r.stream ? first_new : 0;
  ev.token_ids.assign(all.begin() + static_cast<ptrdiff_t>(first_unsent), all.end());
  if (r.wants_logprobs) ev.logprobs = logprobs_of(first_unsent, all.size());
  ev.text = r.output.take_rest();
  count_finished(st, r, ev.finish_reason);
  out.emplace_back(std::move(r.identity), std::move(ev));
  (stopped_before_engine ? ended.stopped : ended.finished).push_back(it->first);
  st.requests.erase(it);
}

void on_outputs(Self self, DetokenizeOutputsMsg& m) {
  auto& st = self->state;
  DetokenizedMsg ended;
  ended.detokenizer = st.settings.index;
  Outgoing out;
  out.reserve(m.outputs.size());
  for (auto& o : m.outputs) {
    auto it = st.requests.find(o.request_id);
    if (it == st.requests.end()) continue;  // ended here already (stop string, cut off, client gone)
    on_output(self, it, o, ended, out);
  }
  flush(self, ended, out);
}

// The server is shutting down (drain timeout): each request gets its final now,
// finish_reason "shutdown", with the tokens and text not sent yet.
void cut_off(Self self, const std::vector<std::string>& engine_ids) {
  auto& st = self->state;
  DetokenizedMsg ended;
  ended.detokenizer = st.settings.index;
  Outgoing out;
  for (const auto& engine_id : engine_ids) {
    auto it = st.requests.find(engine_id);
    if (it == st.requests.end()) continue;  // its final went out already
    StreamingRequest& r = it->second;
    const auto& all = r.output.token_ids();
    ServerEvent ev;
    ev.kind = ServerEvent::Kind::kFinal;
    ev.request_id = r.client_request_id;
    ev.finish_reason = "shutdown";
    ev.message = "the server shut down before this request finished (drain timeout)";
    ev.num_prompt_tokens = static_cast<int32_t>(r.prompt_token_ids.size());
    ev.prompt_token_ids = std::move(r.prompt_token_ids);
    ev.num_output_tokens = static_cast<int32_t>(all.size());
    // Streaming: every token went out in a delta already; only held-back text is left.
    if (!r.stream) {
      ev.token_ids = all;
      if (r.wants_logprobs) ev.logprobs = r.logprobs;
    } else if (r.wants_logprobs) {
      ev.logprobs.emplace();
    }
    ev.text = r.output.take_rest();
    count_finished(st, r, "shutdown");
    if (st.settings.status) st.settings.status->num_cut_off.fetch_add(1);
    out.emplace_back(std::move(r.identity), std::move(ev));
    ended.finished.push_back(engine_id);
    st.requests.erase(it);
  }
  flush(self, ended, out);
}

detokenizer_actor::behavior_type detokenizer_fn(Self self, DetokenizerSettings settings, frontend_actor frontend) {
  self->state.settings = std::move(settings);
  self->state.frontend = std::move(frontend);
  self->state.route.tracer = self->state.settings.tracer;
  return {
      [=](DetokenizeStartMsg& m) {
        auto& st = self->state;
        StreamingRequest r{std::move(m.identity), std::move(m.client_request_id), m.stream,
                           std::move(m.prompt_token_ids), TextOutput(st.settings.tokenizer.get(), std::move(m.stop)),
                           m.wants_logprobs, {}, m.arrival_ns, 0};
        st.requests.emplace(std::move(m.engine_request_id), std::move(r));
      },
      [=](DetokenizeOutputsMsg& m) { on_outputs(self, m); },
      [=](DetokenizeEndMsg& m) {
        if (m.why == DetokenizeEndMsg::Why::kCutOff) return cut_off(self, m.engine_request_ids);
        auto& st = self->state;
        for (const auto& engine_id : m.engine_request_ids) {  // the client left: no final, nobody reads it
          auto it = st.requests.find(engine_id);
          if (it == st.requests.end()) continue;
          count_finished(st, it->second, "abort");
          st.requests.erase(it);
        }
      },
      [=](BridgeMsg& m) { self->state.route.bridge = m.bridge; },
      [=](HttpFrontMsg& m) { self->state.route.http_deliver = std::move(m.deliver); },
  };
}

}  // namespace

detokenizer_actor spawn_detokenizer(caf::local_actor* parent, DetokenizerSettings settings, frontend_actor frontend) {
  return parent->spawn<caf::detached + caf::linked>(detokenizer_fn, std::move(settings), std::move(frontend));
}

}  // namespace vela::actors
