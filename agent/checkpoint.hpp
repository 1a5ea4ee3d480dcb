#pragma once

// The agent's checkpoint: what a restarted agent needs to take back its running executors and
// deliver the status updates that were not yet acknowledged. Everything is under
// <work_dir>/meta:
//
//   meta/agent                        AgentRecord: the agent's id and the boot it ran in
//   meta/executors/<container id>     ExecutorRecord: one executor run and its tasks
//   meta/updates/<framework>/<task>   the task's status update stream, an append-only log
//
// Records are replaced atomically (write, fsync, rename); logs are appended and fdatasync'd
// before the update they hold goes anywhere. Removing meta/ makes the next agent start afresh.

#include <optional>
#include <string>
#include <vector>

#include "agent/checkpoint.pb.h"
#include "common/result.hpp"

namespace agora::agent::checkpoint {

std::string agentPath(const std::string& meta);
std::string executorsDir(const std::string& meta);
std::string executorPath(const std::string& meta, const std::string& containerId);
std::string updatesDir(const std::string& meta);

// The machine's boot id (/proc/sys/kernel/random/boot_id): executors do not outlive a reboot.
std::string bootId();

// An absent record is not an error: std::nullopt.
Result<std::optional<AgentRecord>> readAgent(const std::string& meta);
Status writeAgent(const std::string& meta, const AgentRecord& record);

Status writeExecutor(const std::string& meta, const ExecutorRecord& record);
Status removeExecutor(const std::string& meta, const std::string& containerId);

struct Executors {
  std::vector<ExecutorRecord> records;
  std::vector<std::string> errors;  // records that could not be read, each named
};
Executors readExecutors(const std::string& meta);

// Appends one record to a log and makes it durable (fdatasync) before returning.
Status appendUpdate(const std::string& path, const UpdateRecord& record);

struct UpdateLog {
  std::vector<UpdateRecord> records;
  bool tornTail = false;  // a partial last record (a crash while writing it) was left out
};
// Reads a log; a record that fails its checksum before the end is an error.
Result<UpdateLog> readUpdates(const std::string& path);

// The files directly in a directory (no "." or ".."), sorted; empty if it does not exist.
std::vector<std::string> listDirectory(const std::string& dir);

}  // namespace agora::agent::checkpoint
