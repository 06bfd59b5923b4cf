#include "llm/in_process_executor.h"

#include <cstdlib>
#include <string_view>

#include "messages/step_placeholders.h"

namespace vela {

Result<WorkerFacts> InProcessExecutor::start(const LoadModel& load) {
  WorkerFacts facts;
  Hello hello;
  hello.device = "cpu";
  facts.hellos.push_back(hello);
  VELA_TRY_ASSIGN(ProfileResult profile, runner_->load(load));
  facts.profiles.push_back(profile);
  return facts;
}

Status InProcessExecutor::init_kv_cache(const InitKVCache& init) {
  VELA_TRY(runner_->init_kv_cache(init));
  return ok_status();
}

InProcessExecutor::InProcessExecutor(std::unique_ptr<Runner> runner) : runner_(std::move(runner)) {
  const char* e = std::getenv("VELA_INPROCESS_OVERLAP");
  overlap_ = e == nullptr || std::string_view(e) != "0";
}

InProcessExecutor::~InProcessExecutor() {
  // A step still on the device finishes before the runner (and its memory) goes.
  if (running_) (void)finish(nullptr);
}

Status InProcessExecutor::finish(const SchedulerOutput* next) {
  running_ = false;
  ModelRunnerOutput out;
  if (!spare_.empty()) {
    out = std::move(spare_.back());
    spare_.pop_back();
  }
  if (next != nullptr) runner_->set_lookahead([next]() { return next; });
  Status finished = runner_->finish_into(out);
  if (next != nullptr) runner_->set_lookahead(nullptr);
  VELA_TRY(finished);
  ready_.push_back(std::move(out));
  return ok_status();
}

Status InProcessExecutor::submit(SchedulerOutput& step) {
  // The step before still runs: this one's inputs are built while it does (the
  // runner's lookahead), then it finishes and its output fills this one's placeholders.
  if (running_) VELA_TRY(finish(&step));
  if (count_placeholders(step) > 0) {
    if (ready_.empty())
      return make_error("bad_placeholder", "step " + std::to_string(step.step_id) +
                                               " has placeholders but no earlier output is at hand");
    VELA_TRY(fill_placeholders(step, ready_.back()));
  }
  VELA_TRY(runner_->launch(step));
  running_ = true;
  if (!overlap_) VELA_TRY(finish(nullptr));  // one step at a time (A/B runs)
  return ok_status();
}

Result<bool> InProcessExecutor::collect(ModelRunnerOutput& out, int) {
  if (ready_.empty() && running_) VELA_TRY(finish(nullptr));
  if (ready_.empty()) return false;
  std::swap(out, ready_.front());
  spare_.push_back(std::move(ready_.front()));
  ready_.pop_front();
  return true;
}

}  // namespace vela
