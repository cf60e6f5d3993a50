#include "sim/kv_state_machine.h"

#include "core/check.h"
#include "core/codec.h"

namespace raftsql::sim {

std::string KvCommand::Encode() const {
  std::string out = "kv1";
  core::PutFixed64(out, client);
  core::PutFixed64(out, op);
  core::PutFixed64(out, key);
  core::PutFixed64(out, static_cast<uint64_t>(value));
  return out;
}

std::optional<KvCommand> KvCommand::Decode(const std::string& data) {
  if (data.size() != 3 + 32 || data.compare(0, 3, "kv1") != 0) {
    return std::nullopt;
  }
  std::string_view in(data);
  in.remove_prefix(3);
  KvCommand c;
  c.client = *core::GetFixed64(in);
  c.op = *core::GetFixed64(in);
  c.key = *core::GetFixed64(in);
  c.value = static_cast<int64_t>(*core::GetFixed64(in));
  return c;
}

std::string KvStateMachine::Apply(const core::Entry& entry) {
  CHECK_EQ(entry.index, applied_ + 1);
  applied_ = entry.index;
  if (entry.type != core::EntryType::kNormal || entry.data.empty()) return "";
  std::optional<KvCommand> cmd = KvCommand::Decode(entry.data);
  CHECK(cmd.has_value());  // Only our workload proposes.
  uint64_t& last = sessions_[cmd->client];
  if (cmd->op <= last) return kDuplicate;
  last = cmd->op;
  data_[cmd->key] = cmd->value;
  return kApplied;
}

void KvStateMachine::ApplyBatch(const std::vector<core::Entry>& entries,
                                std::vector<std::string>* results) {
  CHECK_EQ(paused_for_, 0);  // The node keeps entries while paused.
  const uint64_t before = applied_;
  core::StateMachine::ApplyBatch(entries, results);
  if (pause_every_ > 0 && applied_ / pause_every_ != before / pause_every_) {
    paused_for_ = pause_ticks_;
    if (pauses_ != nullptr) ++*pauses_;
  }
}

absl::Status KvStateMachine::Restore(const core::Snapshot& snapshot) {
  paused_for_ = 0;  // What the pause stood for is replaced.
  std::string_view in(snapshot.data);
  auto read_map = [&in](auto& map) {
    std::optional<uint64_t> n = core::GetFixed64(in);
    if (!n) return false;
    for (uint64_t i = 0; i < *n; ++i) {
      std::optional<uint64_t> k = core::GetFixed64(in);
      std::optional<uint64_t> v = core::GetFixed64(in);
      if (!k || !v) return false;
      map[*k] =
          static_cast<typename std::decay_t<decltype(map)>::mapped_type>(*v);
    }
    return true;
  };
  std::map<uint64_t, int64_t> data;
  std::map<uint64_t, uint64_t> sessions;
  if (!read_map(data) || !read_map(sessions)) {
    return absl::DataLossError("malformed key/value snapshot");
  }
  data_ = std::move(data);
  sessions_ = std::move(sessions);
  applied_ = snapshot.metadata.index;
  return absl::OkStatus();
}

int64_t KvStateMachine::Get(uint64_t key) const {
  auto it = data_.find(key);
  return it == data_.end() ? 0 : it->second;
}

uint64_t KvStateMachine::LastOp(uint64_t client) const {
  auto it = sessions_.find(client);
  return it == sessions_.end() ? 0 : it->second;
}

std::string KvStateMachine::Serialize() const {
  std::string out;
  core::PutFixed64(out, data_.size());
  for (const auto& [k, v] : data_) {
    core::PutFixed64(out, k);
    core::PutFixed64(out, static_cast<uint64_t>(v));
  }
  core::PutFixed64(out, sessions_.size());
  for (const auto& [k, v] : sessions_) {
    core::PutFixed64(out, k);
    core::PutFixed64(out, v);
  }
  return out;
}

uint64_t KvStateMachine::Digest() const {
  const std::string s = Serialize();
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace raftsql::sim
