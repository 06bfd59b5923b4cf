#include "model/device.h"
#include "workers/worker_process.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string_view>
#include <zmq.hpp>

#include "common/clock.h"
#include "common/logging.h"
#include "transport/curve_auth.h"
#include "transport/step_channel.h"
#include "transport/step_link.h"
#include "transport/trace_record.h"
#include "transport/zmq_io.h"
#include "messages/codec.h"
#include "messages/step_placeholders.h"
#include "model/communicator.h"
#include "workers/gloo_communicator.h"
#include "workers/model_runner.h"
#include "workers/zmq_store.h"
#ifdef VELA_HAVE_CUDA
#include "workers/nccl_communicator.h"
#endif

namespace vela {
namespace {

class WorkerLoop {
 public:
  WorkerLoop(const WorkerOptions& options, const RunnerFactory& make_runner)
      : options_(options), make_runner_(make_runner), socket_(context_, zmq::socket_type::dealer),
        name_("engine" + std::to_string(options.replica) + ".worker" + std::to_string(options.rank)),
        log_(logger("worker")) {
    if (!options_.trace_path.empty()) trace_ = std::make_unique<TraceFile>(options_.trace_path);
  }

  int run() {
    transport::configure_socket(socket_);
    transport::apply_worker_curve_env(socket_);  // tcp: the keys the engine made for this group
    socket_.set(zmq::sockopt::routing_id, "w" + std::to_string(options_.rank));
    socket_.connect(options_.engine_endpoint);

    Hello hello;
    hello.rank = options_.rank;
    hello.pid = static_cast<int32_t>(::getpid());
    hello.device = options_.device;
    if (auto device = parse_device(options_.device); device) {
      if (auto memory = query_device_memory(*device); memory) {
        hello.total_memory_bytes = memory->total_bytes;
        hello.free_memory_bytes = memory->free_bytes;
      }
    }
    if (options_.world_size > 1 && options_.rank == 0) {
      auto server = ZmqStoreServer::start(context_, options_.dist_host, options_.engine_endpoint);
      if (!server) return fail_startup(server.error());
      store_server_ = std::move(server.value());
      hello.dist_init_address = store_server_->address();
    }
    if (!options_.step_channel.empty()) {
      auto channel = transport::StepChannel::attach(options_.step_channel, options_.rank);
      if (!channel) return fail_startup(channel.error());
      channel_ = std::move(channel.value());
    }
    steps_.emplace(socket_, channel_.get(), msg::MsgType::kSchedulerOutput);
    outputs_.emplace(channel_.get(), [this](const msg::Frames& frames) {
      return send_frames(frames) ? ok_status() : make_error("send_failed", "could not send an output to the engine");
    });
    send(hello, 0);

    bool spin = false;  // armed by a step from the ring: the next one is usually microseconds away
    while (true) {
      if (options_.parent_pid > 0 && ::getppid() != options_.parent_pid) {
        log_->error("{}: engine (pid {}) is gone, exiting", name_, options_.parent_pid);
        return 3;
      }
      // The message and its decoded form are reused across steps (no allocation once warm).
      while (true) {
        if (held_) {  // the runner's lookahead took it off the channel while a step ran
          held_ = false;
          spin = spin || held_from_ring_;
          if (auto code = process_held()) return *code;
          continue;
        }
        if (ahead_error_) {
          log_->error("{}: {}", name_, ahead_error_->message);
          send(ErrorMessage{options_.rank, ahead_error_->code, ahead_error_->message, {}}, 0);
          return 4;
        }
        auto from = steps_->receive(in_frames_);
        if (!from) {
          log_->error("{}: {}", name_, from.error().message);
          send(ErrorMessage{options_.rank, from.error().code, from.error().message, {}}, 0);
          return 4;
        }
        if (*from == transport::StepReceiver::From::kNothing) break;
        spin = spin || *from == transport::StepReceiver::From::kRing;
        if (auto code = process(in_frames_)) return *code;
      }
      steps_->wait(spin ? options_.step_spin_ns : 0, 200);
      spin = false;
    }
  }

 private:
  // Decodes the message in `frames` and handles it; an exit code ends the loop.
  std::optional<int> process(const msg::Frames& frames) {
    const int64_t recv_wall = wall_time_ns();
    auto env = msg::decode_into(frames, incoming_);
    if (!env) {
      log_->error("{}: undecodable message from the engine: {}", name_, env.error().message);
      send(ErrorMessage{options_.rank, env.error().code, env.error().message, {}}, 0);
      return std::nullopt;
    }
    if (trace_) trace_->append(received_record(*env, "engine" + std::to_string(options_.replica), name_, frames, recv_wall));
    return handle(*env, incoming_);
  }

  // The runner's lookahead (Runner::set_lookahead), called while the device runs a
  // step: takes the next message off the channel without waiting and holds it; if it
  // is a step the runner builds its host inputs now, and the loop handles it next, as
  // if it had just arrived. One message is held at most; a receive error is reported
  // by the loop after the step.
  const SchedulerOutput* look_ahead() {
    if (!held_) {
      if (ahead_error_) return nullptr;
      auto from = steps_->receive(ahead_frames_);
      if (!from) {
        ahead_error_ = from.error();
        return nullptr;
      }
      if (*from == transport::StepReceiver::From::kNothing) return nullptr;
      held_ = true;
      held_from_ring_ = *from == transport::StepReceiver::From::kRing;
      const int64_t recv_wall = wall_time_ns();
      auto env = msg::decode_into(ahead_frames_, ahead_message_);
      if (!env) {
        held_envelope_ = env.error();
        return nullptr;
      }
      held_envelope_ = env.value();
      if (trace_)
        trace_->append(received_record(*env, "engine" + std::to_string(options_.replica), name_, ahead_frames_, recv_wall));
    }
    if (!held_envelope_) return nullptr;
    return std::get_if<SchedulerOutput>(&ahead_message_);
  }

  std::optional<int> process_held() {
    if (!held_envelope_) {
      log_->error("{}: undecodable message from the engine: {}", name_, held_envelope_.error().message);
      send(ErrorMessage{options_.rank, held_envelope_.error().code, held_envelope_.error().message, {}}, 0);
      return std::nullopt;
    }
    std::swap(incoming_, ahead_message_);  // both keep their buffers warm
    return handle(held_envelope_.value(), incoming_);
  }

  // Returns an exit code when the loop should end.
  std::optional<int> handle(const msg::Envelope& envelope, msg::Message& message) {
    if (auto* step = std::get_if<SchedulerOutput>(&message)) {
      if (!runner_ || !kv_ready_) {
        send(ErrorMessage{options_.rank, "not_ready", "step before LoadModel/InitKVCache", {}}, envelope.id);
        return std::nullopt;
      }
      Status filled = ok_status();
      try {
        filled = fill_placeholders_of(*step);
      } catch (const std::exception& e) {  // the all-gather with a dead peer throws
        filled = make_error("exception", e.what());
      }
      if (!filled) {
        send(ErrorMessage{options_.rank, filled.error().code,
                          "step " + std::to_string(step->step_id) + ": " + filled.error().message, {}},
             step->step_id);
        return std::nullopt;
      }
      Status ran = make_error("exception", "");
      try {
        ran = runner_->execute_into(*step, output_);
      } catch (const std::exception& e) {  // a collective whose peer died throws
        ran = make_error("exception", e.what());
      }
      if (!ran) {
        send(ErrorMessage{options_.rank, ran.error().code,
                          "step " + std::to_string(step->step_id) + ": " + ran.error().message, {}},
             step->step_id);
      } else if (options_.rank == 0) {
        msg::encode_into(output_, step->step_id, wall_time_ns(), out_frames_);
        // At most two steps are in flight (4 slots), so a slot is free unless the engine is stuck.
        if (auto sent = outputs_->send(out_frames_, transport::steady_now_ns() + 5'000'000'000); !sent) {
          log_->error("{}: step {}: {}", name_, step->step_id, sent.error().message);
          send(ErrorMessage{options_.rank, sent.error().code, sent.error().message, {}}, step->step_id);
        }
      }
      return std::nullopt;
    }
    if (auto* load = std::get_if<LoadModel>(&message)) {
      if (auto loaded = load_model(*load); !loaded)
        send(ErrorMessage{options_.rank, loaded.error().code, loaded.error().message, {}}, envelope.id);
      return std::nullopt;
    }
    if (auto* init = std::get_if<InitKVCache>(&message)) {
      if (!runner_) {
        send(ErrorMessage{options_.rank, "not_loaded", "InitKVCache before LoadModel", {}}, envelope.id);
        return std::nullopt;
      }
      auto ok = runner_->init_kv_cache(*init);
      if (!ok) {
        send(ErrorMessage{options_.rank, ok.error().code, ok.error().message, {}}, envelope.id);
      } else {
        kv_ready_ = true;
        send(Ack{options_.rank, envelope.id}, envelope.id);
      }
      return std::nullopt;
    }
    if (std::holds_alternative<Shutdown>(message)) {
      log_->debug("{}: shutdown", name_);
      if (runner_)
        if (auto st = model_runner_stats(*runner_); st && st->graph_steps + st->eager_steps > 0)
          log_->info("{}: {} steps ({} from CUDA graphs, {} eager), {} built ahead while the step before ran "
                     "({:.1f} ms of host time hidden); host prep {:.1f} ms, launch {:.1f} ms, wait {:.1f} ms",
                     name_, st->graph_steps + st->eager_steps, st->graph_steps, st->eager_steps, st->ahead_steps,
                     st->ahead_seconds * 1e3, st->prep_seconds * 1e3, st->launch_seconds * 1e3, st->wait_seconds * 1e3);
      return 0;
    }
    if (auto* hb = std::get_if<Heartbeat>(&message)) {
      send(Heartbeat{options_.rank, hb->sequence}, envelope.id);
      return std::nullopt;
    }
    log_->warn("{}: ignoring unexpected {}", name_, msg::msg_type_name(envelope.type));
    return std::nullopt;
  }

  // Async scheduling: the step's placeholders are the tokens this group sampled in
  // the step before (messages/step_placeholders.h). Rank 0 sampled them (output_
  // still holds that step's output); the other ranks get them from rank 0 through
  // the tensor-parallel communicator, so every rank feeds the same tokens.
  Status fill_placeholders_of(SchedulerOutput& step) {
    const size_t n = count_placeholders(step);
    if (n == 0) return ok_status();
    if (options_.world_size == 1) return fill_placeholders(step, output_);
    Status collected = ok_status();
    if (options_.rank == 0) collected = collect_placeholder_tokens(step, output_, placeholder_tokens_);
    if (options_.rank != 0 || !collected || placeholder_tokens_.size() != n) placeholder_tokens_.assign(n, -2);
    // Token ids are below 2^24, exact in a float. Rank 0 failing still joins the
    // collective (with -2s), so no rank waits for it; every rank then reports.
    gather_in_.assign(placeholder_tokens_.begin(), placeholder_tokens_.end());
    gather_out_.resize(n * size_t(options_.world_size));
    comm_->all_gather(gather_in_.data(), n, gather_out_.data());
    for (size_t i = 0; i < n; ++i) placeholder_tokens_[i] = int32_t(gather_out_[i]);
    VELA_TRY(collected);
    for (int32_t t : placeholder_tokens_)
      if (t < 0) return make_error("bad_placeholder", "rank 0 could not fill the step's placeholders");
    return fill_placeholders_from(step, placeholder_tokens_);
  }

  Status load_model(const LoadModel& load) {
    if (load.tensor_parallel_size != options_.world_size || load.tp_rank != options_.rank)
      return make_error("bad_rank", name_ + ": LoadModel for rank " + std::to_string(load.tp_rank) + " of " +
                                        std::to_string(load.tensor_parallel_size) + " sent to rank " +
                                        std::to_string(options_.rank) + " of " + std::to_string(options_.world_size));
    // The control communicator (Gloo, host fp32: the step's placeholder tokens) and
    // the model's: the same on the CPU, NCCL on device buffers on CUDA.
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(options_.collective_timeout_s * 1000));
    if (options_.world_size > 1) {
      VELA_TRY_ASSIGN(comm_, GlooCommunicator::connect(context_, options_.rank, options_.world_size,
                                                       load.dist_init_address, options_.dist_host, timeout));
    } else {
      comm_ = std::make_unique<SingleRankCommunicator>();
    }
    Communicator* model_comm = comm_.get();
    VELA_TRY_ASSIGN(const Device device, parse_device(options_.device));
    if (options_.world_size > 1 && device.type == DeviceType::kCUDA) {
#ifdef VELA_HAVE_CUDA
      try {
        ZmqStore store(context_, load.dist_init_address, timeout);
        VELA_TRY_ASSIGN(device_comm_,
                        NcclCommunicator::connect(store, options_.rank, options_.world_size, device.index, timeout));
      } catch (const std::exception& e) {
        return make_error("nccl_init", name_ + ": rendezvous at " + load.dist_init_address + ": " + e.what());
      }
      model_comm = device_comm_.get();
#else
      return make_error("no_cuda", name_ + ": " + options_.device + ": this build has no CUDA backend");
#endif
    }
    VELA_TRY_ASSIGN(runner_, make_runner_(options_.runner, model_comm));
    // VELA_WORKER_LOOKAHEAD=0 turns the lookahead off (to measure what it hides).
    const char* lookahead_env = std::getenv("VELA_WORKER_LOOKAHEAD");
    if (lookahead_env == nullptr || std::string_view(lookahead_env) != "0")
      runner_->set_lookahead([this] { return look_ahead(); });
    Result<ProfileResult> profile = make_error("exception", "");
    try {
      profile = runner_->load(load);
    } catch (const std::exception& e) {
      profile = make_error("exception", std::string("load threw: ") + e.what());
    }
    if (!profile) return profile.error();
    profile->rank = options_.rank;
    send(profile.value(), 0);
    return ok_status();
  }

  int fail_startup(const Error& e) {
    log_->error("{}: {}", name_, e.message);
    send(ErrorMessage{options_.rank, e.code, e.message, {}}, 0);
    return 2;
  }

  void send(const msg::Message& m, uint64_t id) {
    if (!send_frames(msg::encode(m, id)))
      log_->error("{}: could not send {} to the engine", name_, msg::msg_type_name(msg::type_of(m)));
  }
  // Blocking send with the bounded queue: the engine reads continuously; if it is
  // gone the parent check ends this process.
  bool send_frames(const msg::Frames& frames) { return transport::send_frames(socket_, frames, {}, false); }

  const WorkerOptions& options_;
  const RunnerFactory& make_runner_;
  zmq::context_t context_;
  zmq::socket_t socket_;
  std::string name_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<TraceFile> trace_;
  std::unique_ptr<ZmqStoreServer> store_server_;
  std::unique_ptr<Communicator> comm_;         // control: host fp32 (Gloo, or the world of one)
  std::unique_ptr<Communicator> device_comm_;  // CUDA tensor parallelism: NCCL (else null)
  std::unique_ptr<Runner> runner_;
  std::unique_ptr<transport::StepChannel> channel_;  // null: steps arrive on the socket
  std::optional<transport::StepReceiver> steps_;     // steps in order, from the ring or the socket
  std::optional<transport::StepSender> outputs_;     // rank 0's outputs up
  bool kv_ready_ = false;
  // Reused across steps: the received frames, their decoded message, the output.
  msg::Frames in_frames_;
  msg::Message incoming_;
  ModelRunnerOutput output_;
  msg::Frames out_frames_;
  // The lookahead's one held message (look_ahead / process_held).
  msg::Frames ahead_frames_;
  msg::Message ahead_message_;
  bool held_ = false;
  bool held_from_ring_ = false;
  Result<msg::Envelope> held_envelope_ = msg::Envelope{};  // its envelope, or why it did not decode
  std::optional<Error> ahead_error_;                        // a receive that failed inside the lookahead
  std::vector<int32_t> placeholder_tokens_;  // async scheduling: the previous step's tokens
  std::vector<float> gather_in_, gather_out_;
};

}  // namespace

int run_worker(const WorkerOptions& options, const RunnerFactory& make_runner) {
  if (options.parent_pid > 0) {
    // Die with the engine even if it is SIGKILLed; then close the race where it died
    // before prctl took effect.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != options.parent_pid) return 3;
  }
  // Ctrl-C in a terminal signals the whole process group; the engine decides when
  // workers stop (it drains first), so the worker ignores SIGINT and SIGTERM; it still
  // dies with the engine through PR_SET_PDEATHSIG.
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGTERM, SIG_IGN);
  // A write to a peer rank that was killed (Gloo's TCP pair) must be an EPIPE error the
  // worker reports, not its own death by SIGPIPE: that death raced the peer's and was
  // sometimes named as the cause (kill -9 of rank 0 reported as rank 1's signal 13).
  ::signal(SIGPIPE, SIG_IGN);
  WorkerLoop loop(options, make_runner);
  return loop.run();
}

}  // namespace vela
