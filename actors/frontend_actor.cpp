// FrontendActor: everything between the client socket and the engine cores.
// Client frames -> decode, render chat messages, tokenize, validate -> AddRequest to the least-loaded
// healthy replica. Engine outputs -> TextOutput (incremental detokenization, stop
// strings, held-back text) -> delta / final frames back through the ClientBridge.
// The HTTP front (http/) hands in already-decoded requests (HttpGenerateMsg) and gets
// its events back as structs; everything between is the same path.
#include <map>
#include <unordered_map>

#include "actors/client_bridge.h"
#include "actors/engine_actors.h"
#include "llm/request_validation.h"
#include "llm/text_output.h"
#include "client/protocol.h"
#include "common/clock.h"
#include "common/logging.h"
#include "engine_core/admission.h"
#include "http/http_server.h"
#include "metrics/serve_metrics.h"
#include "tokenizer/tokenizer.h"

namespace vela::actors {
namespace {

using client::ServerEvent;

struct LiveRequest {
  std::string identity;           // the client's connection
  std::string client_request_id;
  int32_t engine = 0;
  bool stream = true;
  std::vector<int32_t> prompt_token_ids;
  TextOutput output;              // tokens, detokenized text, stop strings, held-back text
  bool wants_logprobs = false;    // params.logprobs >= 0
  std::vector<TokenLogprobs> logprobs;  // one per entry of output.token_ids() (when wanted)
  int64_t arrival_ns = 0;         // wall clock at the frontend (TTFT, end-to-end latency)
  int64_t first_token_ns = 0;     // 0 until the first output token
};

struct EngineSlot {
  engine_core_actor handle;
  bool healthy = false;
  EngineFacts facts;
  int64_t load = 0;               // live requests on it
  enum class State { kStarting, kServing, kRestarting, kDead };
  State state = State::kStarting;
  std::string error;              // restarting / dead: what failed
  int64_t last_progress_ns = 0;   // steady time of its last output, or of its first request after idling
};

// A request whose text a tokenizer actor is working on.
struct Tokenizing {
  std::string identity;
  client::GenerateRequest request;  // its prompt / messages moved to the tokenizer
  size_t bytes = 0;
  int64_t recv_ns = 0;
  bool max_tokens_auto = false;     // HTTP chat without max_tokens (see admit)
};

struct FrontendState {
  FrontendSettings settings;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::optional<trace_actor> tracer;
  ServerStatus* status = nullptr;
  ClientBridge* bridge = nullptr;
  std::function<void(const std::string&, client::ServerEvent)> http_deliver;  // the HTTP front, once it listens
  std::vector<EngineSlot> engines;
  std::unordered_map<std::string, LiveRequest> live;   // by engine request id
  // identity -> client request id -> engine request id
  std::unordered_map<std::string, std::unordered_map<std::string, std::string>> by_client;
  uint64_t next_id = 1;
  bool draining = false;
  std::vector<tokenizer_actor> tokenizers;
  std::vector<int64_t> tokenizer_queue;                 // jobs sent to each, not answered yet
  uint64_t next_job = 1;
  std::unordered_map<uint64_t, Tokenizing> tokenizing;  // by job
  std::map<std::pair<std::string, std::string>, uint64_t> tokenizing_ids;  // (identity, client id) -> job
};

using Self = frontend_actor::stateful_pointer<FrontendState>;

void trace(Self self, const char* type, const char* from, const char* to, uint64_t bytes, const std::string& rid,
           int64_t sent_ns) {
  TraceRecord r;
  r.type = type;
  r.from = from;
  r.to = to;
  r.bytes = bytes;
  r.request_id = rid;
  r.send_time_ns = sent_ns;
  r.recv_time_ns = wall_time_ns();
  self->send(*self->state.tracer, std::move(r));
}

void reply(Self self, const std::string& identity, ServerEvent ev) {
  auto& st = self->state;
  if (http::is_http_identity(identity)) {
    if (st.tracer) trace(self, client::event_kind_name(ev.kind), "frontend", "http", 0, ev.request_id, wall_time_ns());
    if (st.http_deliver) st.http_deliver(identity, std::move(ev));
    return;
  }
  if (!st.bridge) return;
  std::string frame = client::encode_server_event(ev);
  if (st.tracer) {
    const int64_t now = wall_time_ns();
    trace(self, client::event_kind_name(ev.kind), "frontend", "client", frame.size(), ev.request_id, now);
  }
  st.bridge->send(identity, std::move(frame));
}

// Latency figures of a request that ends now (ServeMetrics).
void count_finished(Self self, const LiveRequest& r, const std::string& reason) {
  auto* m = self->state.settings.metrics;
  if (!m) return;
  const int64_t now = wall_time_ns();
  const auto num_tokens = static_cast<int64_t>(r.output.token_ids().size());
  const double tpot = num_tokens >= 2 && r.first_token_ns > 0
                          ? static_cast<double>(now - r.first_token_ns) * 1e-9 / static_cast<double>(num_tokens - 1)
                          : -1.0;
  m->request_finished(reason, num_tokens, static_cast<double>(now - r.arrival_ns) * 1e-9, tpot);
}

void reply_error(Self self, const std::string& identity, const client::ProtocolError& e) {
  if (self->state.settings.metrics && !e.request_id.empty()) self->state.settings.metrics->request_refused(e.code);
  ServerEvent ev;
  ev.kind = ServerEvent::Kind::kError;
  ev.request_id = e.request_id;
  ev.code = e.code;
  ev.field = e.field;
  ev.message = e.message;
  reply(self, identity, ev);
}

void check_drained(Self self) {
  auto& st = self->state;
  if (st.draining && st.live.empty() && st.tokenizing.empty()) st.status->drained = true;
}

void forget(Self self, const std::string& engine_id) {
  auto& st = self->state;
  auto it = st.live.find(engine_id);
  if (it == st.live.end()) return;
  auto c = st.by_client.find(it->second.identity);
  if (c != st.by_client.end()) {
    c->second.erase(it->second.client_request_id);
    if (c->second.empty()) st.by_client.erase(c);
  }
  if (it->second.engine < static_cast<int32_t>(st.engines.size())) st.engines[it->second.engine].load--;
  st.live.erase(it);
  check_drained(self);
}

// Validates the tokenized request and hands it to the least-loaded healthy replica.
// max_tokens_auto (HTTP chat without max_tokens): max_tokens becomes what is left of
// max_model_len and of the KV pool after the prompt.
void admit(Self self, const std::string& identity, client::GenerateRequest& g, std::vector<int32_t> ids, size_t bytes,
           int64_t recv_ns, bool max_tokens_auto) {
  auto& st = self->state;
  auto fail = [&](std::string code, std::string field, std::string message) {
    reply_error(self, identity, client::ProtocolError{std::move(code), std::move(field), std::move(message), g.request_id});
  };
  int32_t engine = -1;
  for (int32_t i = 0; i < static_cast<int32_t>(st.engines.size()); ++i)
    if (st.engines[i].healthy && (engine < 0 || st.engines[i].load < st.engines[engine].load)) engine = i;
  if (engine < 0) return fail("unavailable", "", "no engine replica is healthy");
  const EngineFacts& facts = st.engines[engine].facts;
  if (max_tokens_auto) {
    const AdmissionLimits& a = facts.admission;
    const int64_t prompt = static_cast<int64_t>(ids.size());
    const int64_t pool_tokens = int64_t{a.num_usable_blocks} * a.block_size_tokens - a.num_lookahead_tokens;
    // The last sampled token's KV is never written: prompt + max_tokens - 1 must fit the pool.
    const int64_t left = std::min<int64_t>(a.max_model_len - prompt, pool_tokens - prompt + 1);
    g.params.max_tokens = static_cast<int32_t>(std::max<int64_t>(1, left));
  }
  ValidationLimits limits{facts.vocab_size, facts.admission};
  if (st.tokenizer) limits.vocab_size = std::max(limits.vocab_size, 1);
  if (auto valid = validate_request(ids, g.prompt_token_ids.has_value(), g.params, limits); !valid) {
    const Error& e = valid.error();
    return reply_error(self, identity, client::ProtocolError{e.code, e.field, e.message, g.request_id});
  }

  const std::string engine_id = std::to_string(st.next_id++);
  LiveRequest r{identity, g.request_id, engine, g.stream, ids, TextOutput(st.tokenizer.get(), g.params.stop),
                g.params.logprobs >= 0, {}, recv_ns, 0};
  if (st.settings.metrics) st.settings.metrics->request_admitted(static_cast<int64_t>(ids.size()));
  st.live.emplace(engine_id, std::move(r));
  st.by_client[identity][g.request_id] = engine_id;
  if (st.engines[engine].load++ == 0) st.engines[engine].last_progress_ns = SteadyClock().now_ns();

  EngineCoreRequest req;
  req.request_id = engine_id;
  req.prompt_token_ids = std::move(ids);
  req.sampling_params = std::move(g.params);
  req.arrival_time = static_cast<double>(recv_ns) * 1e-9;
  req.priority = g.priority;
  req.eos_token_id = facts.eos_token_id;
  if (st.tracer) trace(self, "generate", "client", "frontend", bytes, engine_id, recv_ns);
  self->send(st.engines[engine].handle, AddRequestMsg{std::move(req), wall_time_ns()});
}

// False when the request was refused at once; otherwise it was admitted or queued
// for tokenization (a later refusal, after tokenizing, comes as its error event).
bool handle_generate(Self self, const std::string& identity, client::GenerateRequest& g, size_t bytes,
                     int64_t recv_ns, bool max_tokens_auto = false) {
  auto& st = self->state;
  auto fail = [&](std::string code, std::string field, std::string message) {
    reply_error(self, identity, client::ProtocolError{std::move(code), std::move(field), std::move(message), g.request_id});
    return false;
  };
  const size_t in_flight = st.live.size() + st.tokenizing.size();
  if (st.draining) return fail("draining", "", "the server is shutting down and accepts no new requests");
  if (static_cast<int64_t>(in_flight) >= st.settings.max_pending_requests)
    return fail("busy", "", "too many requests in flight (" + std::to_string(in_flight) + ")");
  auto mine = st.by_client.find(identity);
  if ((mine != st.by_client.end() && mine->second.count(g.request_id)) || st.tokenizing_ids.count({identity, g.request_id}))
    return fail("invalid_value", "request_id", "request_id '" + g.request_id + "' is already in flight");
  bool any_healthy = false;
  for (const auto& e : st.engines) any_healthy |= e.healthy;
  if (!any_healthy) return fail("unavailable", "", "no engine replica is healthy");
  if (g.prompt_token_ids) {
    std::vector<int32_t> ids = std::move(*g.prompt_token_ids);
    g.prompt_token_ids = std::vector<int32_t>{};  // keep "was given as ids" for validation messages
    const size_t before = st.live.size();
    admit(self, identity, g, std::move(ids), bytes, recv_ns, max_tokens_auto);
    return st.live.size() > before;
  }
  const char* field = g.messages ? "messages" : "prompt";
  if (!st.tokenizer) return fail("invalid_value", field, "this server has no tokenizer: send prompt_token_ids");
  // Text goes to the tokenizer with the shortest queue; the request waits in
  // `tokenizing` (an abort or a disconnect there ends it without the engine).
  TokenizeMsg job;
  job.job = st.next_job++;
  if (g.messages) {
    for (auto& t : *g.messages) job.chat.emplace_back(std::move(t.role), std::move(t.content));
    g.messages->clear();
  } else {
    job.prompt = std::move(*g.prompt);
    g.prompt = std::string{};
  }
  size_t pick = 0;
  for (size_t i = 1; i < st.tokenizers.size(); ++i)
    if (st.tokenizer_queue[i] < st.tokenizer_queue[pick]) pick = i;
  st.tokenizer_queue[pick]++;
  st.tokenizing_ids[{identity, g.request_id}] = job.job;
  st.tokenizing.emplace(job.job, Tokenizing{identity, std::move(g), bytes, recv_ns, max_tokens_auto});
  self->send(st.tokenizers[pick], std::move(job));
  return true;
}

void on_tokenized(Self self, TokenizedMsg& m) {
  auto& st = self->state;
  if (m.tokenizer < st.tokenizer_queue.size()) st.tokenizer_queue[m.tokenizer]--;
  auto it = st.tokenizing.find(m.job);
  if (it == st.tokenizing.end()) return;  // aborted, cut off, or its client left meanwhile
  Tokenizing t = std::move(it->second);
  st.tokenizing.erase(it);
  st.tokenizing_ids.erase({t.identity, t.request.request_id});
  if (!m.error.empty()) {
    reply_error(self, t.identity, client::ProtocolError{"invalid_value", "messages", m.error, t.request.request_id});
  } else {
    admit(self, t.identity, t.request, std::move(m.ids), t.bytes, t.recv_ns, t.max_tokens_auto);
  }
  check_drained(self);
}

// A request still being tokenized ends here with its one final (abort, shutdown).
void end_tokenizing(Self self, uint64_t job, const char* finish_reason, const std::string& message) {
  auto& st = self->state;
  auto it = st.tokenizing.find(job);
  if (it == st.tokenizing.end()) return;
  ServerEvent ev;
  ev.kind = ServerEvent::Kind::kFinal;
  ev.request_id = it->second.request.request_id;
  ev.finish_reason = finish_reason;
  ev.message = message;
  if (it->second.request.params.logprobs >= 0) ev.logprobs.emplace();
  reply(self, it->second.identity, ev);
  st.tokenizing_ids.erase({it->second.identity, it->second.request.request_id});
  st.tokenizing.erase(it);
  check_drained(self);
}

void abort_on_engine(Self self, const LiveRequest& r, const std::string& engine_id) {
  auto& st = self->state;
  if (r.engine < static_cast<int32_t>(st.engines.size()))
    self->send(st.engines[r.engine].handle, AbortMsg{{engine_id}, wall_time_ns()});
}

// The pong: the server's status and each replica's state.
ServerEvent health(Self self) {
  auto& st = self->state;
  ServerEvent pong;
  pong.kind = ServerEvent::Kind::kPong;
  const int64_t now = SteadyClock().now_ns();
  bool any_serving = false;
  for (size_t i = 0; i < st.engines.size(); ++i) {
    const EngineSlot& e = st.engines[i];
    client::ReplicaHealth h;
    h.index = static_cast<int32_t>(i);
    h.num_requests = static_cast<int32_t>(e.load);
    if (st.settings.metrics) {
      const SchedulerStats stats = st.settings.metrics->replica_stats(i);
      h.num_free_blocks = stats.num_free_blocks;
      h.num_usable_blocks = stats.num_usable_blocks;
      h.num_preemptions = stats.num_preemptions;
    }
    switch (e.state) {
      case EngineSlot::State::kStarting: h.state = "starting"; break;
      case EngineSlot::State::kRestarting: h.state = "restarting"; h.message = e.error; break;
      case EngineSlot::State::kDead: h.state = "dead"; h.message = e.error; break;
      case EngineSlot::State::kServing: {
        any_serving = true;
        const double quiet_s = static_cast<double>(now - e.last_progress_ns) * 1e-9;
        if (e.load > 0 && quiet_s >= st.settings.stall_after_s) {
          h.state = "stalled";
          char text[96];
          std::snprintf(text, sizeof text, "no output for %.1f s with %lld request(s) in flight", quiet_s,
                        static_cast<long long>(e.load));
          h.message = text;
        } else {
          h.state = "serving";
        }
        break;
      }
    }
    pong.replicas.push_back(std::move(h));
  }
  pong.status = st.draining ? "draining" : any_serving ? "serving" : "unavailable";
  return pong;
}

void handle_frames(Self self, ClientFramesMsg& m) {
  auto& st = self->state;
  if (m.frames.size() != 1)
    return reply_error(self, m.identity, {"malformed", "frame", "a client message is exactly one frame, got " +
                                                                    std::to_string(m.frames.size()), {}});
  auto decoded = client::decode_client_message(m.frames[0], static_cast<size_t>(st.settings.max_message_bytes));
  if (auto* e = std::get_if<client::ProtocolError>(&decoded)) return reply_error(self, m.identity, *e);
  auto& msg = std::get<client::ClientMessage>(decoded);
  if (auto* g = std::get_if<client::GenerateRequest>(&msg)) {
    handle_generate(self, m.identity, *g, m.frames[0].size(), m.recv_ns);
    return;
  }
  if (auto* a = std::get_if<client::AbortRequest>(&msg)) {
    if (auto t = st.tokenizing_ids.find({m.identity, a->request_id}); t != st.tokenizing_ids.end())
      return end_tokenizing(self, t->second, "abort", "");
    auto c = st.by_client.find(m.identity);
    if (c == st.by_client.end() || !c->second.count(a->request_id)) return;  // already finished: nothing to do
    const std::string engine_id = c->second[a->request_id];
    if (st.tracer) trace(self, "abort", "client", "frontend", m.frames[0].size(), engine_id, m.recv_ns);
    abort_on_engine(self, st.live.at(engine_id), engine_id);  // the engine answers with kAbort
    return;
  }
  reply(self, m.identity, health(self));
}

const char* finish_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kError: return "error";
    default: return "";
  }
}

void handle_output(Self self, EngineCoreOutput& o) {
  auto& st = self->state;
  auto it = st.live.find(o.request_id);
  if (it == st.live.end()) return;  // finished by a stop string or its client left
  LiveRequest& r = it->second;
  const size_t first_new = r.output.token_ids().size();
  if (r.first_token_ns == 0 && !o.new_token_ids.empty()) {
    r.first_token_ns = wall_time_ns();
    if (st.settings.metrics) st.settings.metrics->first_token(static_cast<double>(r.first_token_ns - r.arrival_ns) * 1e-9);
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
  if (stop && finish != FinishReason::kError) {
    // The text ends before the stop string, even when the engine also finished this step.
    if (finish == FinishReason::kNone) abort_on_engine(self, r, o.request_id);  // frees its KV blocks; its kAbort is ignored
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
    reply(self, r.identity, ev);
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
  count_finished(self, r, ev.finish_reason);
  reply(self, r.identity, ev);
  forget(self, o.request_id);
}

// Ends every live request now with a final (finish_reason "shutdown"): the tokens and
// text not sent yet, and aborts it on its engine (whose kAbort is then ignored).
void cut_off_all(Self self) {
  auto& st = self->state;
  std::vector<uint64_t> jobs;
  for (const auto& [job, t] : st.tokenizing) jobs.push_back(job);
  for (uint64_t job : jobs) {
    end_tokenizing(self, job, "shutdown", "the server shut down before this request finished (drain timeout)");
    st.status->num_cut_off.fetch_add(1);
  }
  std::vector<std::string> engine_ids;
  for (const auto& [engine_id, r] : st.live) engine_ids.push_back(engine_id);
  for (const auto& engine_id : engine_ids) {
    LiveRequest& r = st.live.at(engine_id);
    abort_on_engine(self, r, engine_id);
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
    count_finished(self, r, "shutdown");
    reply(self, r.identity, ev);
    st.status->num_cut_off.fetch_add(1);
    forget(self, engine_id);
  }
  check_drained(self);
}

frontend_actor::behavior_type frontend_fn(Self self, FrontendSettings settings, std::shared_ptr<const Tokenizer> tokenizer,
                                          std::optional<trace_actor> tracer, ServerStatus* status) {
  auto& st = self->state;
  st.settings = settings;
  st.tokenizer = std::move(tokenizer);
  st.tracer = std::move(tracer);
  st.status = status;
  if (st.tokenizer) {
    // Linked: they end with the frontend.
    for (int32_t i = 0; i < std::max(1, st.settings.tokenizer_threads); ++i) {
      st.tokenizers.push_back(spawn_tokenizer(self, st.tokenizer, caf::actor_cast<frontend_actor>(self), size_t(i)));
      st.tokenizer_queue.push_back(0);
    }
  }
  return {
      [=](ClientFramesMsg& m) { handle_frames(self, m); },
      [=](TokenizedMsg& m) { on_tokenized(self, m); },
      [=](OutputsMsg& m) {
        if (self->state.tracer)
          trace(self, "EngineCoreOutputs", ("engine" + std::to_string(m.outputs.engine_index)).c_str(), "frontend", 0, "",
                m.sent_ns);
        if (static_cast<size_t>(m.outputs.engine_index) < self->state.engines.size())
          self->state.engines[m.outputs.engine_index].last_progress_ns = SteadyClock().now_ns();
        for (auto& o : m.outputs.outputs) handle_output(self, o);
      },
      [=](ClientGoneMsg& m) {
        auto& st = self->state;
        for (auto t = st.tokenizing_ids.lower_bound({m.identity, ""});
             t != st.tokenizing_ids.end() && t->first.first == m.identity;) {
          st.tokenizing.erase(t->second);  // its tokenizer's answer will find nothing
          t = st.tokenizing_ids.erase(t);
        }
        check_drained(self);
        auto c = st.by_client.find(m.identity);
        if (c == st.by_client.end()) return;
        std::vector<std::string> ids;
        for (auto& [client_id, engine_id] : c->second) ids.push_back(engine_id);
        if (!http::is_http_identity(m.identity))
          logger("frontend")->info("client disconnected: aborting its {} request(s)", ids.size());
        for (const auto& id : ids) {
          count_finished(self, st.live.at(id), "abort");
          abort_on_engine(self, st.live.at(id), id);
          forget(self, id);
        }
      },
      [=](EngineStateMsg& m) {
        auto& slot = self->state.engines.at(m.engine_index);
        slot.healthy = m.healthy;
        if (m.healthy) slot.facts = m.facts;
        slot.state = m.healthy ? EngineSlot::State::kServing
                     : m.restarting ? EngineSlot::State::kRestarting
                                    : EngineSlot::State::kDead;
        slot.error = m.error;
        slot.last_progress_ns = SteadyClock().now_ns();
        if (self->state.settings.metrics)
          self->state.settings.metrics->set_replica_healthy(static_cast<size_t>(m.engine_index), m.healthy);
      },
      [=](EnginesMsg& m) {
        for (auto& h : m.engines) {
          self->state.engines.emplace_back();
          self->state.engines.back().handle = h;
        }
      },
      [=](BridgeMsg& m) { self->state.bridge = m.bridge; },
      [=](HttpFrontMsg& m) { self->state.http_deliver = std::move(m.deliver); },
      [=](HttpGenerateMsg& m) {
        // Choices in order; at the first refusal the rest are not tried (the HTTP
        // front answers the refusal and aborts the choices already admitted).
        for (auto& g : m.choices)
          if (!handle_generate(self, m.identity, g, 0, m.recv_ns, m.max_tokens_auto)) break;
      },
      [=](DrainMsg&) {
        if (self->state.settings.metrics) self->state.settings.metrics->set_draining();
        self->state.draining = true;
        check_drained(self);
      },
      [=](CutOffMsg&) {
        self->state.draining = true;
        cut_off_all(self);
      },
  };
}

}  // namespace

frontend_actor spawn_frontend(caf::actor_system& system, FrontendSettings settings,
                              std::shared_ptr<const Tokenizer> tokenizer, std::optional<trace_actor> tracer,
                              ServerStatus* status) {
  return system.spawn<caf::detached>(frontend_fn, settings, std::move(tokenizer), std::move(tracer), status);
}

}  // namespace vela::actors
