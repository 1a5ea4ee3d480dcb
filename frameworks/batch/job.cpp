#include "frameworks/batch/job.hpp"

#include <cctype>
#include <functional>
#include <set>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/ids.hpp"
#include "common/resources.hpp"
#include "common/yaml_json.hpp"

namespace agora::batch {

namespace {

using nlohmann::json;

// A name that goes into task ids and file names: lower-case letters, digits and '-'.
Status checkName(const std::string& name, const std::string& what) {
  if (name.empty() || name.size() > 63) {
    return Error(what + " must have a name of 1 to 63 characters");
  }
  for (char c : name) {
    if (!std::islower(static_cast<unsigned char>(c)) && !std::isdigit(static_cast<unsigned char>(c)) &&
        c != '-') {
      return Error(what + " '" + name + "': use lower-case letters, digits and '-'");
    }
  }
  return ok();
}

// YAML gives scalars as strings: "3" and 3 are both 3.
Result<int> intField(const json& object, const char* key, int fallback, int min, int max) {
  auto it = object.find(key);
  if (it == object.end()) return fallback;
  long long value = 0;
  if (it->is_number_integer()) {
    value = it->get<long long>();
  } else if (it->is_string() && !it->get<std::string>().empty() &&
             it->get<std::string>().find_first_not_of("0123456789") == std::string::npos &&
             it->get<std::string>().size() < 10) {
    value = std::stoll(it->get<std::string>());
  } else {
    return Error(std::string("'") + key + "' must be a whole number");
  }
  if (value < min || value > max) {
    return Error(std::string("'") + key + "' must be between " + std::to_string(min) + " and " +
                 std::to_string(max));
  }
  return static_cast<int>(value);
}

Result<std::string> stringField(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) return std::string();
  if (!it->is_string()) return Error(std::string("'") + key + "' must be text");
  return it->get<std::string>();
}

Result<std::vector<std::string>> listField(const json& object, const char* key) {
  std::vector<std::string> out;
  auto it = object.find(key);
  if (it == object.end()) return out;
  if (!it->is_array()) return Error(std::string("'") + key + "' must be a list");
  for (const json& item : *it) {
    if (!item.is_string()) return Error(std::string("'") + key + "' must list names");
    out.push_back(item.get<std::string>());
  }
  return out;
}

Status onlyKnown(const json& object, const std::set<std::string>& known, const std::string& where) {
  for (const auto& [key, value] : object.items()) {
    if (known.count(key) == 0) return Error(where + ": unknown field '" + key + "'");
  }
  return ok();
}

Result<Stage> parseStage(const json& j, size_t index) {
  std::string where = "stage " + std::to_string(index + 1);
  if (!j.is_object()) return Error(where + " must be a map");
  if (Status s = onlyKnown(j, {"name", "command", "image", "resources", "tasks", "inputs",
                               "depends_on", "retries"},
                           where);
      !s) {
    return Error(s.error());
  }
  Stage stage;
  auto name = stringField(j, "name");
  if (!name) return Error(where + ": " + name.error());
  stage.name = *name;
  if (Status s = checkName(stage.name, where); !s) return Error(s.error());
  where = "stage '" + stage.name + "'";
  auto command = stringField(j, "command");
  auto image = stringField(j, "image");
  auto resources = stringField(j, "resources");
  if (!command || !image || !resources) {
    return Error(where + ": " + (!command ? command.error() : !image ? image.error()
                                                                     : resources.error()));
  }
  if (command->empty()) return Error(where + " has no 'command'");
  stage.command = *command;
  stage.image = *image;
  if (!resources->empty()) stage.resources = *resources;
  auto parsed = Resources::parse(stage.resources);
  if (!parsed) return Error(where + ": resources: " + parsed.error());
  if (parsed->scalar("cpus") <= 0 || parsed->scalar("mem") <= 0) {
    return Error(where + ": resources need cpus and mem");
  }
  auto retries = intField(j, "retries", 2, 0, 100);
  if (!retries) return Error(where + ": " + retries.error());
  stage.retries = *retries;
  auto depends = listField(j, "depends_on");
  if (!depends) return Error(where + ": " + depends.error());
  stage.dependsOn = *depends;
  if (j.contains("inputs")) {
    const json& inputs = j["inputs"];
    if (!inputs.is_array() || inputs.empty()) {
      return Error(where + ": 'inputs' must be a non-empty list");
    }
    for (const json& i : inputs) {
      Input input;
      if (i.is_string()) {
        input.path = i.get<std::string>();
      } else if (i.is_object()) {
        if (Status s = onlyKnown(i, {"path", "where"}, where + ": an input"); !s) {
          return Error(s.error());
        }
        auto path = stringField(i, "path");
        if (!path) return Error(where + ": input: " + path.error());
        input.path = *path;
        if (i.contains("where")) {
          if (!i["where"].is_object()) return Error(where + ": an input's 'where' must be a map");
          for (const auto& [key, value] : i["where"].items()) {
            if (!value.is_string()) {
              return Error(where + ": an input's 'where' maps attributes to text");
            }
            input.where[key] = value.get<std::string>();
          }
        }
      } else {
        return Error(where + ": each input is a path or {path, where}");
      }
      if (input.path.empty()) return Error(where + ": an input without a path");
      stage.inputs.push_back(std::move(input));
    }
    if (j.contains("tasks")) return Error(where + ": give 'inputs' or 'tasks', not both");
    stage.tasks = static_cast<int>(stage.inputs.size());
  } else {
    auto tasks = intField(j, "tasks", 1, 1, 100000);
    if (!tasks) return Error(where + ": " + tasks.error());
    stage.tasks = *tasks;
  }
  return stage;
}

}  // namespace

const Stage* Job::stage(const std::string& name) const {
  for (const Stage& s : stages) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

Result<Job> parseJob(const std::string& text) {
  auto parsed = parseYamlOrJson(text);
  if (!parsed) return Error(parsed.error());
  const json& j = *parsed;
  if (!j.is_object()) return Error("a job is a map with a name and stages");
  if (Status s = onlyKnown(j, {"name", "role", "user", "output", "deadline", "stages"}, "the job");
      !s) {
    return Error(s.error());
  }
  Job job;
  auto name = stringField(j, "name");
  auto role = stringField(j, "role");
  auto user = stringField(j, "user");
  auto output = stringField(j, "output");
  auto deadline = stringField(j, "deadline");
  for (auto* r : {&name, &role, &user, &output, &deadline}) {
    if (!*r) return Error(r->error());
  }
  job.name = *name;
  if (Status s = checkName(job.name, "the job"); !s) return Error(s.error());
  if (!role->empty()) job.role = *role;
  if (Status s = validateRole(job.role); !s) return Error("role: " + s.error());
  job.user = *user;
  job.output = *output;
  if (!job.output.empty() && job.output.front() != '/') {
    return Error("'output' must be an absolute path");
  }
  if (!deadline->empty()) {
    auto d = parseDuration(*deadline);
    if (!d || *d <= Duration::zero()) return Error("'deadline' must be a duration like 10m");
    job.deadline = *d;
  }
  if (!j.contains("stages") || !j["stages"].is_array() || j["stages"].empty()) {
    return Error("a job needs a list of 'stages'");
  }
  std::vector<Stage> stages;
  std::set<std::string> names;
  for (size_t i = 0; i < j["stages"].size(); ++i) {
    auto stage = parseStage(j["stages"][i], i);
    if (!stage) return Error(stage.error());
    if (!names.insert(stage->name).second) {
      return Error("two stages are named '" + stage->name + "'");
    }
    stages.push_back(std::move(stage).value());
  }
  for (const Stage& s : stages) {
    for (const std::string& d : s.dependsOn) {
      if (names.count(d) == 0) {
        return Error("stage '" + s.name + "' depends on '" + d + "', which the job lacks");
      }
      if (d == s.name) return Error("stage '" + s.name + "' depends on itself");
    }
  }
  // Dependency order (Kahn's), keeping the file's order among stages that are ready together.
  std::set<std::string> placed;
  while (job.stages.size() < stages.size()) {
    bool progressed = false;
    for (const Stage& s : stages) {
      if (placed.count(s.name) > 0) continue;
      bool ready = true;
      for (const std::string& d : s.dependsOn) ready = ready && placed.count(d) > 0;
      if (ready) {
        job.stages.push_back(s);
        placed.insert(s.name);
        progressed = true;
      }
    }
    if (!progressed) {
      std::string cycle;
      for (const Stage& s : stages) {
        if (placed.count(s.name) == 0) cycle += (cycle.empty() ? "" : ", ") + s.name;
      }
      return Error("the stages' dependencies form a cycle (" + cycle + ")");
    }
  }
  return job;
}

Result<Job> loadJob(const std::string& path) {
  auto text = readFile(path);
  if (!text) return Error(text.error());
  auto job = parseJob(*text);
  if (!job) return Error(path + ": " + job.error());
  return job;
}

}  // namespace agora::batch
