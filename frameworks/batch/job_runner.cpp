#include "frameworks/batch/job_runner.hpp"

#include <algorithm>

#include "agora/scheduler.hpp"
#include "common/resources.hpp"

namespace agora::batch {

using json = nlohmann::json;

namespace {

void addEnv(CommandInfo* command, const std::string& name, const std::string& value) {
  EnvironmentVariable* var = command->add_environment();
  var->set_name(name);
  var->set_value(value);
}

}  // namespace

JobRunner::JobRunner(Job job, RunnerOptions options, TimePoint now)
    : job_(std::move(job)), options_(options), started_(now) {
  for (const Stage& spec : job_.stages) {
    StageState stage;
    stage.spec = &spec;
    if (auto need = Resources::parse(spec.resources)) stage.need = *need;  // parseJob checks it
    stage.slots.resize(static_cast<size_t>(spec.tasks));
    for (int i = 0; i < spec.tasks; ++i) stage.slots[static_cast<size_t>(i)].index = i;
    stages_.push_back(std::move(stage));
  }
  readyStages(now);
}

JobRunner::SlotCounts JobRunner::countsOf(const Slot& slot) {
  return {slot.pending && !slot.finished, !slot.finished && !slot.running.empty(), slot.finished};
}

void JobRunner::recount(StageState& stage, const SlotCounts& before, const Slot& slot) {
  SlotCounts now = countsOf(slot);
  stage.pendingCount += static_cast<int>(now.pending) - static_cast<int>(before.pending);
  stage.runningCount += static_cast<int>(now.running) - static_cast<int>(before.running);
  stage.finishedCount += static_cast<int>(now.finished) - static_cast<int>(before.finished);
}

void JobRunner::makePending(StageState& stage, Slot& slot, TimePoint since) {
  SlotCounts before = countsOf(slot);
  bool queued = slot.pending;
  slot.pending = true;
  slot.pendingSince = since;
  if (!queued) stage.queue.push_back(slot.index);
  recount(stage, before, slot);
}

void JobRunner::rebuildCounts(StageState& stage) {
  stage.pendingCount = stage.runningCount = stage.finishedCount = 0;
  stage.queue.clear();
  for (const Slot& slot : stage.slots) {
    recount(stage, SlotCounts{}, slot);
    if (slot.pending && !slot.finished) stage.queue.push_back(slot.index);
  }
}

void JobRunner::readyStages(TimePoint now) {
  bool changed = true;
  while (changed) {
    changed = false;
    for (StageState& stage : stages_) {
      if (stage.ready || stage.finished) continue;
      bool ready = true;
      for (const std::string& d : stage.spec->dependsOn) {
        for (const StageState& other : stages_) {
          if (other.spec->name == d && !other.finished) ready = false;
        }
      }
      if (!ready) continue;
      stage.ready = true;
      changed = true;
      for (Slot& slot : stage.slots) makePending(stage, slot, now);
    }
  }
  done_ = std::all_of(stages_.begin(), stages_.end(),
                      [](const StageState& s) { return s.finished; });
}

bool JobRunner::matches(const Input& input, const Offer& offer) const {
  for (const auto& [name, value] : input.where) {
    bool found = name == "hostname" && offer.hostname() == value;
    for (const Attribute& a : offer.attributes()) {
      found = found || (a.name() == name && a.value() == value);
    }
    if (!found) return false;
  }
  return true;
}

TaskInfo JobRunner::makeTask(const StageState& stage, Slot& slot, const Offer& offer,
                             bool speculative) {
  const Stage& spec = *stage.spec;
  TaskInfo task;
  std::string id = job_.name + "." + spec.name + "." + std::to_string(slot.index) + "." +
                   std::to_string(slot.attempts);
  task.set_task_id(id);
  task.set_name(job_.name + "/" + spec.name + "/" + std::to_string(slot.index) +
                (speculative ? " (speculative)" : ""));
  task.set_agent_id(offer.agent_id());
  stage.need.copyTo(task.mutable_resources());
  CommandInfo* command = task.mutable_command();
  command->set_value(spec.command);
  if (!job_.user.empty()) command->set_user(job_.user);
  addEnv(command, "AGORA_BATCH_JOB", job_.name);
  addEnv(command, "AGORA_BATCH_STAGE", spec.name);
  addEnv(command, "AGORA_BATCH_INDEX", std::to_string(slot.index));
  addEnv(command, "AGORA_BATCH_ATTEMPT", std::to_string(slot.attempts));
  if (!spec.inputs.empty()) {
    addEnv(command, "AGORA_BATCH_INPUT", spec.inputs[static_cast<size_t>(slot.index)].path);
  }
  if (!job_.output.empty()) addEnv(command, "AGORA_BATCH_OUTPUT", job_.output);
  if (!spec.image.empty()) task.mutable_container()->set_image(spec.image);
  Label* label = task.add_labels();
  label->set_key("agora.io/batch-job");
  label->set_value(job_.name);
  ++slot.attempts;
  return task;
}

Decision JobRunner::offers(const std::vector<Offer>& offers, TimePoint now) {
  tick(now);
  Decision decision;
  for (const Offer& offer : offers) {
    std::vector<TaskInfo> tasks;
    if (!done_ && failure_.empty()) {
      Resources available(offer.resources());
      for (size_t s = 0; s < stages_.size(); ++s) {
        StageState& stage = stages_[s];
        if (!stage.ready || stage.finished || stage.pendingCount == 0) continue;
        // The stage's pending tasks in the order they became pending; those this offer does
        // not suit stay, in order, for the next.
        std::vector<int> passed;
        while (!stage.queue.empty() && available.contains(stage.need)) {
          int index = stage.queue.front();
          stage.queue.pop_front();
          Slot& slot = stage.slots[static_cast<size_t>(index)];
          if (!slot.pending || slot.finished) continue;  // no longer pending
          bool waited = now - slot.pendingSince >= options_.localityWait;
          const Input* input = stage.spec->inputs.empty()
                                   ? nullptr
                                   : &stage.spec->inputs[static_cast<size_t>(slot.index)];
          // Where its data is, where it did not fail, and (a speculative copy) not beside its
          // twin: each preferred until the wait is over; a twin's agent is never taken.
          bool twinHere = false;
          for (const auto& [id, attempt] : slot.running) {
            twinHere = twinHere || attempt.agentId == offer.agent_id();
          }
          if (twinHere ||
              (!waited && input != nullptr && !input->where.empty() && !matches(*input, offer)) ||
              (!waited && slot.failedOn.count(offer.agent_id()) > 0)) {
            passed.push_back(index);
            continue;
          }
          available -= stage.need;
          SlotCounts before = countsOf(slot);
          bool speculative = !slot.running.empty();
          TaskInfo task = makeTask(stage, slot, offer, speculative);
          slot.pending = false;
          slot.lastTask = task.task_id();
          slot.lastAgent = offer.agent_id();
          slot.running[task.task_id()] = Attempt{task.task_id(), offer.agent_id(), now,
                                                 speculative};
          recount(stage, before, slot);
          byTask_[task.task_id()] = {s, slot.index};
          tasks.push_back(std::move(task));
        }
        stage.queue.insert(stage.queue.begin(), passed.begin(), passed.end());
      }
    }
    if (tasks.empty()) {
      decision.decline.push_back(offer.id());
    } else {
      decision.launch[offer.id()] = std::move(tasks);
    }
  }
  return decision;
}

std::vector<std::string> JobRunner::update(const TaskStatus& status, TimePoint now) {
  std::vector<std::string> kill;
  if (!isTerminalState(status.state())) return kill;
  auto found = byTask_.find(status.task_id());
  if (found == byTask_.end()) return kill;
  StageState& stage = stages_[found->second.first];
  Slot& slot = stage.slots[static_cast<size_t>(found->second.second)];
  auto attempt = slot.running.find(status.task_id());
  if (attempt == slot.running.end()) return kill;  // an update for an attempt already ended
  Attempt ended = attempt->second;
  SlotCounts before = countsOf(slot);
  slot.running.erase(attempt);
  if (slot.finished) return kill;  // the loser of a race, killed
  if (status.state() == TASK_FINISHED) {
    slot.finished = true;
    slot.pending = false;
    recount(stage, before, slot);
    stage.durations.push_back(now - ended.started);
    for (const auto& [id, twin] : slot.running) kill.push_back(id);
    if (stage.finishedCount == static_cast<int>(stage.slots.size())) {
      stage.finished = true;
      readyStages(now);
    }
    return kill;
  }
  recount(stage, before, slot);
  ++stage.failures;
  ++slot.failures;
  slot.failedOn.insert(ended.agentId);
  if (!slot.running.empty()) return kill;  // its twin runs on
  if (slot.failures > stage.spec->retries) {
    fail("task " + std::to_string(slot.index) + " of stage '" + stage.spec->name + "' failed " +
         std::to_string(slot.failures) + " times; the last: " + TaskState_Name(status.state()) +
         (status.message().empty() ? "" : " (" + status.message() + ")"));
    return kill;
  }
  makePending(stage, slot, now);
  return kill;
}

void JobRunner::tick(TimePoint now) {
  if (done_ || !failure_.empty()) return;
  if (job_.deadline && now - started_ > *job_.deadline) {
    fail("the job ran past its deadline (" + formatDuration(*job_.deadline) + ")");
    return;
  }
  // Stragglers are looked for ten times a second at most: it walks the stage's tasks.
  if (lastStragglerScan_ != TimePoint{} && now - lastStragglerScan_ < milliseconds(100)) return;
  lastStragglerScan_ = now;
  for (StageState& stage : stages_) {
    if (!stage.ready || stage.finished || stage.durations.empty()) continue;
    std::vector<Duration> sorted = stage.durations;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<long>(sorted.size() / 2),
                     sorted.end());
    Duration median = sorted[sorted.size() / 2];
    auto threshold = std::max<Duration>(
        std::chrono::duration_cast<Duration>(median * options_.stragglerFactor),
        options_.stragglerMinimum);
    for (Slot& slot : stage.slots) {
      if (slot.finished || slot.pending || slot.speculated || slot.running.size() != 1) continue;
      if (now - slot.running.begin()->second.started > threshold) {
        slot.speculated = true;
        makePending(stage, slot, now - options_.localityWait);  // any other agent will do
      }
    }
  }
}

bool JobRunner::wantsOffers() const {
  if (done_ || !failure_.empty()) return false;
  for (const StageState& stage : stages_) {
    if (stage.ready && !stage.finished && stage.pendingCount > 0) return true;
  }
  return false;
}

std::vector<StageProgress> JobRunner::progress() const {
  std::vector<StageProgress> out;
  for (const StageState& stage : stages_) {
    StageProgress p;
    p.name = stage.spec->name;
    p.tasks = static_cast<int>(stage.slots.size());
    p.ready = stage.ready;
    p.failures = stage.failures;
    p.finished = stage.finishedCount;
    p.running = stage.runningCount;
    out.push_back(p);
  }
  return out;
}

std::vector<std::string> JobRunner::finishedStages() const {
  std::vector<std::string> out;
  for (const StageState& stage : stages_) {
    if (stage.finished) out.push_back(stage.spec->name);
  }
  return out;
}

std::vector<std::string> JobRunner::activeTasks() const {
  std::vector<std::string> out;
  for (auto& [id, agent] : activeAttempts()) out.push_back(std::move(id));
  return out;
}

std::vector<std::pair<std::string, std::string>> JobRunner::activeAttempts() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const StageState& stage : stages_) {
    for (const Slot& slot : stage.slots) {
      for (const auto& [id, attempt] : slot.running) out.emplace_back(id, attempt.agentId);
    }
  }
  return out;
}

std::vector<JobRunner::TaskRef> JobRunner::latestAttempts() const {
  std::vector<TaskRef> out;
  for (const StageState& stage : stages_) {
    for (const Slot& slot : stage.slots) {
      out.push_back({stage.spec->name, slot.index, slot.lastTask, slot.lastAgent, slot.finished});
    }
  }
  return out;
}

json JobRunner::snapshot(TimePoint now) const {
  json stages = json::array();
  for (const StageState& stage : stages_) {
    json slots = json::array();
    for (const Slot& slot : stage.slots) {
      json running = json::array();
      for (const auto& [id, attempt] : slot.running) {
        running.push_back(
            {{"task", id}, {"agent", attempt.agentId}, {"speculative", attempt.speculative}});
      }
      slots.push_back({{"attempts", slot.attempts},
                       {"failures", slot.failures},
                       {"finished", slot.finished},
                       {"speculated", slot.speculated},
                       {"failed_on", slot.failedOn},
                       {"last_task", slot.lastTask},
                       {"last_agent", slot.lastAgent},
                       {"running", running}});
    }
    stages.push_back({{"name", stage.spec->name},
                      {"ready", stage.ready},
                      {"failures", stage.failures},
                      {"slots", slots}});
  }
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - started_).count();
  return {{"elapsed_ms", elapsed}, {"failure", failure_}, {"stages", stages}};
}

Status JobRunner::restore(const json& snapshot, TimePoint now) {
  if (!snapshot.is_object() || !snapshot.contains("stages") || !snapshot["stages"].is_array()) {
    return Error("the job's record has no stages");
  }
  // Checked whole before anything changes.
  for (const json& saved : snapshot["stages"]) {
    if (!saved.is_object()) return Error("the job's record has a stage that is not an object");
    std::string name = saved.value("name", "");
    auto stage = std::find_if(stages_.begin(), stages_.end(),
                              [&](const StageState& s) { return s.spec->name == name; });
    if (stage == stages_.end()) return Error("the job's record names an unknown stage '" + name + "'");
    if (!saved.contains("slots") || !saved["slots"].is_array() ||
        saved["slots"].size() != stage->slots.size()) {
      return Error("the job's record of stage '" + name + "' has " +
                   (saved.contains("slots") && saved["slots"].is_array()
                        ? std::to_string(saved["slots"].size())
                        : std::string("no")) +
                   " tasks, the job " + std::to_string(stage->slots.size()));
    }
  }
  try {
    for (const json& saved : snapshot["stages"]) {
      size_t s = 0;
      while (stages_[s].spec->name != saved.value("name", "")) ++s;
      StageState& stage = stages_[s];
      stage.ready = saved.value("ready", false);
      stage.failures = saved.value("failures", 0);
      const json& slots = saved["slots"];
      for (size_t i = 0; i < stage.slots.size(); ++i) {
        const json& record = slots[i];
        Slot& slot = stage.slots[i];
        slot.attempts = record.value("attempts", 0);
        slot.failures = record.value("failures", 0);
        slot.finished = record.value("finished", false);
        slot.speculated = record.value("speculated", false);
        slot.failedOn = record.value("failed_on", std::set<std::string>{});
        slot.lastTask = record.value("last_task", "");
        slot.lastAgent = record.value("last_agent", "");
        slot.running.clear();
        if (!slot.finished) {
          for (const json& a : record.value("running", json::array())) {
            std::string id = a.value("task", "");
            if (id.empty()) continue;
            slot.running[id] = Attempt{id, a.value("agent", ""), now, a.value("speculative", false)};
            byTask_[id] = {s, slot.index};
          }
        }
        slot.pending = stage.ready && !slot.finished && slot.running.empty();
        slot.pendingSince = now;
      }
      rebuildCounts(stage);
      stage.finished = stage.ready && stage.finishedCount == static_cast<int>(stage.slots.size());
    }
  } catch (const json::exception& e) {
    return Error(std::string("the job's record does not parse: ") + e.what());
  }
  started_ = now - std::chrono::milliseconds(snapshot.value("elapsed_ms", int64_t{0}));
  std::string failure = snapshot.value("failure", "");
  if (!failure.empty()) fail(failure);
  readyStages(now);
  return ok();
}

void JobRunner::fail(const std::string& why) {
  if (failure_.empty()) failure_ = why;
}

}  // namespace agora::batch
