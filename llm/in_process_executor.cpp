#include "llm/in_process_executor.h"

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

Status InProcessExecutor::submit(SchedulerOutput& step) {
  if (count_placeholders(step) > 0) {
    if (ready_.empty())
      return make_error("bad_placeholder", "step " + std::to_string(step.step_id) +
                                               " has placeholders but no earlier output is at hand");
    VELA_TRY(fill_placeholders(step, ready_.back()));
  }
  ModelRunnerOutput out;
  if (!spare_.empty()) {
    out = std::move(spare_.back());
    spare_.pop_back();
  }
  VELA_TRY(runner_->execute_into(step, out));
  ready_.push_back(std::move(out));
  return ok_status();
}

Result<bool> InProcessExecutor::collect(ModelRunnerOutput& out, int) {
  if (ready_.empty()) return false;
  std::swap(out, ready_.front());
  spare_.push_back(std::move(ready_.front()));
  ready_.pop_front();
  return true;
}

}  // namespace vela
