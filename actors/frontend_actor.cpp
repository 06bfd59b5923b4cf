// FrontendActor: everything between the client socket and the engine cores.
// Client frames -> decode, validate; text to a tokenizer (TokenizerActor) -> AddRequest
// to the least-loaded healthy replica. Engine outputs -> the request's detokenizer
// (DetokenizerActor: detokenization, stop strings, held-back text, the delta / final
// events), each on its own thread, so this thread only routes.
// The HTTP front (http/) hands in already-decoded requests (HttpGenerateMsg) and gets
// its events back as structs; everything between is the same path.
#include <map>
#include <unordered_map>

#include "actors/engine_actors.h"
#include "actors/event_route.h"
#include "llm/request_validation.h"
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

// A request on an engine; its text and events belong to its detokenizer.
struct LiveRequest {
  std::string identity;           // the client's connection
  std::string client_request_id;
  int32_t engine = 0;
  size_t detokenizer = 0;         // index into FrontendState::detokenizers
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
  EventRoute route;                // the bridge, the HTTP front and the tracer, once known
  ServerStatus* status = nullptr;
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
  std::vector<detokenizer_actor> detokenizers;
  std::vector<int64_t> detokenizer_load;                // live requests pinned to each
  std::vector<std::vector<EngineCoreOutput>> outputs_for;  // one step's outputs, per detokenizer (reused)
};

using Self = frontend_actor::stateful_pointer<FrontendState>;

void trace(Self self, const char* type, const char* from, const char* to, uint64_t bytes, const std::string& rid,
           int64_t sent_ns) {
  send_trace(self->state.route, type, from, to, bytes, rid, sent_ns);
}

void reply(Self self, const std::string& identity, ServerEvent ev) {
  send_event(self->state.route, identity, std::move(ev));
}

// An error event: e's code, field and message, echoing request_id (empty when unknown).
void reply_error(Self self, const std::string& identity, const Error& e, const std::string& request_id) {
  if (self->state.settings.metrics && !request_id.empty()) self->state.settings.metrics->request_refused(e.code);
  ServerEvent ev;
  ev.kind = ServerEvent::Kind::kError;
  ev.request_id = request_id;
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
  st.detokenizer_load[it->second.detokenizer]--;
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
    reply_error(self, identity, field_error(std::move(code), std::move(field), std::move(message)), g.request_id);
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
  if (auto valid = validate_request(ids, g.prompt_token_ids.has_value(), g.params, limits); !valid)
    return reply_error(self, identity, valid.error(), g.request_id);

  const std::string engine_id = std::to_string(st.next_id++);
  size_t detokenizer = 0;  // the one with the fewest requests; it keeps this one to its end
  for (size_t i = 1; i < st.detokenizers.size(); ++i)
    if (st.detokenizer_load[i] < st.detokenizer_load[detokenizer]) detokenizer = i;
  st.detokenizer_load[detokenizer]++;
  self->send(st.detokenizers[detokenizer],
             DetokenizeStartMsg{engine_id, identity, g.request_id, g.stream, ids, g.params.stop, g.params.logprobs >= 0,
                                recv_ns});
  if (st.settings.metrics) st.settings.metrics->request_admitted(static_cast<int64_t>(ids.size()));
  st.live.emplace(engine_id, LiveRequest{identity, g.request_id, engine, detokenizer});
  st.by_client[identity][g.request_id] = engine_id;
  if (st.engines[engine].load++ == 0) st.engines[engine].last_progress_ns = SteadyClock().now_ns();

  EngineCoreRequest req;
  req.request_id = engine_id;
  req.prompt_token_ids = std::move(ids);
  req.sampling_params = std::move(g.params);
  req.arrival_time = static_cast<double>(recv_ns) * 1e-9;
  req.priority = g.priority;
  req.eos_token_id = facts.eos_token_id;
  trace(self, "generate", "client", "frontend", bytes, engine_id, recv_ns);
  self->send(st.engines[engine].handle, AddRequestMsg{std::move(req), wall_time_ns()});
}

// False when the request was refused at once; otherwise it was admitted or queued
// for tokenization (a later refusal, after tokenizing, comes as its error event).
bool handle_generate(Self self, const std::string& identity, client::GenerateRequest& g, size_t bytes,
                     int64_t recv_ns, bool max_tokens_auto = false) {
  auto& st = self->state;
  auto fail = [&](std::string code, std::string field, std::string message) {
    reply_error(self, identity, field_error(std::move(code), std::move(field), std::move(message)), g.request_id);
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
    reply_error(self, t.identity, field_error("invalid_value", "messages", m.error), t.request.request_id);
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
    return reply_error(self, m.identity, field_error("malformed", "frame", "a client message is exactly one frame, got " +
                                                                             std::to_string(m.frames.size())), "");
  std::string request_id;  // echoed by an error reply when the frame's could be read
  auto decoded = client::decode_client_message(m.frames[0], size_t(st.settings.max_message_bytes), &request_id);
  if (!decoded) return reply_error(self, m.identity, decoded.error(), request_id);
  client::ClientMessage& msg = *decoded;
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
    trace(self, "abort", "client", "frontend", m.frames[0].size(), engine_id, m.recv_ns);
    abort_on_engine(self, st.live.at(engine_id), engine_id);  // the engine answers with kAbort
    return;
  }
  reply(self, m.identity, health(self));
}

// One step's outputs, each to its request's detokenizer (one message per
// detokenizer per step). Outputs of requests that ended already are dropped.
void route_outputs(Self self, EngineCoreOutputs& outputs) {
  auto& st = self->state;
  for (auto& o : outputs.outputs) {
    auto it = st.live.find(o.request_id);
    if (it == st.live.end()) continue;  // ended by a stop string, cut off, or its client left
    st.outputs_for[it->second.detokenizer].push_back(std::move(o));
  }
  for (size_t i = 0; i < st.detokenizers.size(); ++i) {
    if (st.outputs_for[i].empty()) continue;
    self->send(st.detokenizers[i], DetokenizeOutputsMsg{std::move(st.outputs_for[i])});
    st.outputs_for[i].clear();  // moved-from: empty, and ready for the next step
  }
}

// A detokenizer sent (or is about to send) these requests' finals.
void on_detokenized(Self self, DetokenizedMsg& m) {
  auto& st = self->state;
  for (const auto& engine_id : m.stopped) {  // a stop string ended the text; the engine still runs it
    auto it = st.live.find(engine_id);
    if (it != st.live.end()) abort_on_engine(self, it->second, engine_id);  // frees its KV blocks; its kAbort is ignored
    forget(self, engine_id);
  }
  for (const auto& engine_id : m.finished) forget(self, engine_id);
}

// Asks each request's detokenizer to end it (why: cut off, or its client left).
void end_on_detokenizers(Self self, const std::vector<std::string>& engine_ids, DetokenizeEndMsg::Why why) {
  auto& st = self->state;
  std::vector<std::vector<std::string>> ids_for(st.detokenizers.size());
  for (const auto& engine_id : engine_ids)
    if (auto it = st.live.find(engine_id); it != st.live.end()) ids_for[it->second.detokenizer].push_back(engine_id);
  for (size_t i = 0; i < ids_for.size(); ++i)
    if (!ids_for[i].empty()) self->send(st.detokenizers[i], DetokenizeEndMsg{std::move(ids_for[i]), why});
}

// Ends every request now with a final (finish_reason "shutdown"): those still
// tokenizing here; live ones on their detokenizer (the tokens and text not sent yet),
// and aborts them on their engine (whose kAbort is then ignored). The drain is over
// once every detokenizer has answered.
void cut_off_all(Self self) {
  auto& st = self->state;
  std::vector<uint64_t> jobs;
  for (const auto& [job, t] : st.tokenizing) jobs.push_back(job);
  for (uint64_t job : jobs) {
    end_tokenizing(self, job, "shutdown", "the server shut down before this request finished (drain timeout)");
    st.status->num_cut_off.fetch_add(1);
  }
  std::vector<std::string> engine_ids;
  for (const auto& [engine_id, r] : st.live) {
    engine_ids.push_back(engine_id);
    abort_on_engine(self, r, engine_id);
  }
  end_on_detokenizers(self, engine_ids, DetokenizeEndMsg::Why::kCutOff);
  check_drained(self);
}

frontend_actor::behavior_type frontend_fn(Self self, FrontendSettings settings, std::shared_ptr<const Tokenizer> tokenizer,
                                          std::optional<trace_actor> tracer, ServerStatus* status) {
  auto& st = self->state;
  st.settings = settings;
  st.tokenizer = std::move(tokenizer);
  st.route.tracer = tracer;
  st.status = status;
  if (st.tokenizer) {
    // Linked: they end with the frontend.
    for (int32_t i = 0; i < std::max(1, st.settings.tokenizer_threads); ++i) {
      st.tokenizers.push_back(spawn_tokenizer(self, st.tokenizer, caf::actor_cast<frontend_actor>(self), size_t(i)));
      st.tokenizer_queue.push_back(0);
    }
  }
  for (int32_t i = 0; i < std::max(1, st.settings.detokenizer_threads); ++i) {  // linked, too
    DetokenizerSettings ds{size_t(i), st.tokenizer, st.settings.metrics, status, tracer};
    st.detokenizers.push_back(spawn_detokenizer(self, std::move(ds), caf::actor_cast<frontend_actor>(self)));
    st.detokenizer_load.push_back(0);
  }
  st.outputs_for.resize(st.detokenizers.size());
  return {
      [=](ClientFramesMsg& m) { handle_frames(self, m); },
      [=](TokenizedMsg& m) { on_tokenized(self, m); },
      [=](DetokenizedMsg& m) { on_detokenized(self, m); },
      [=](OutputsMsg& m) {
        if (self->state.route.tracer)
          trace(self, "EngineCoreOutputs", ("engine" + std::to_string(m.outputs.engine_index)).c_str(), "frontend", 0, "",
                m.sent_ns);
        if (static_cast<size_t>(m.outputs.engine_index) < self->state.engines.size())
          self->state.engines[m.outputs.engine_index].last_progress_ns = SteadyClock().now_ns();
        route_outputs(self, m.outputs);
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
        end_on_detokenizers(self, ids, DetokenizeEndMsg::Why::kClientGone);  // counted there, no final
        for (const auto& id : ids) {
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
      [=](BridgeMsg& m) {
        self->state.route.bridge = m.bridge;
        for (auto& d : self->state.detokenizers) self->send(d, m);  // before any request they stream
      },
      [=](HttpFrontMsg& m) {
        for (auto& d : self->state.detokenizers) self->send(d, m);
        self->state.route.http_deliver = std::move(m.deliver);
      },
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
