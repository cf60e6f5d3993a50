// The vocabulary of the Raft core: log entries, messages, persistent and soft
// state. Plain value types with no behaviour beyond printing; everything here
// is copyable and has no pointers into other objects.
#ifndef RAFTSQL_CORE_TYPES_H_
#define RAFTSQL_CORE_TYPES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace raftsql::core {

// Node ids are positive; 0 means "nobody" (no leader, no vote).
inline constexpr uint64_t kNone = 0;

enum class EntryType : uint8_t {
  kNormal = 0,
  kConfChange = 1,
};

struct Entry {
  uint64_t term = 0;
  uint64_t index = 0;
  EntryType type = EntryType::kNormal;
  std::string data;

  // Approximate bytes this entry occupies in a message or on disk.
  uint64_t Size() const { return data.size() + 24; }
  bool operator==(const Entry&) const = default;
};

// Persistent state: must be durable before any message that depends on it.
struct HardState {
  uint64_t term = 0;
  uint64_t vote = kNone;
  uint64_t commit = 0;

  bool IsEmpty() const { return term == 0 && vote == kNone && commit == 0; }
  bool operator==(const HardState&) const = default;
};

// The voting configuration. Invariant: voters and learners are disjoint and
// sorted ascending.
struct ConfState {
  std::vector<uint64_t> voters;
  std::vector<uint64_t> learners;

  bool operator==(const ConfState&) const = default;
};

struct SnapshotMetadata {
  uint64_t index = 0;
  uint64_t term = 0;
  ConfState conf_state;

  bool operator==(const SnapshotMetadata&) const = default;
};

// A state-machine image at `metadata.index`; `data` is opaque to the core.
struct Snapshot {
  SnapshotMetadata metadata;
  std::string data;

  bool IsEmpty() const { return metadata.index == 0; }
  bool operator==(const Snapshot&) const = default;
};

// One membership change (single-server changes; see DESIGN.md §2).
struct ConfChange {
  enum class Type : uint8_t { kAddVoter, kAddLearner, kRemoveNode };
  Type type = Type::kAddVoter;
  uint64_t node_id = kNone;
  std::string context;

  std::string Encode() const;
  static std::optional<ConfChange> Decode(const std::string& data);
  bool operator==(const ConfChange&) const = default;
};

enum class MessageType : uint8_t {
  // Local messages: never sent over the network.
  kHup,          // start an election
  kBeat,         // leader: send heartbeats
  kCheckQuorum,  // leader: step down unless a quorum was recently active
  kUnreachable,  // runtime: a peer could not be reached
  kSnapStatus,   // runtime: a snapshot send finished (reject = failed)
  // Network messages.
  kProp,            // proposal forwarded to the leader
  kApp,             // AppendEntries
  kAppResp,         // AppendEntries response
  kVote,            // RequestVote
  kVoteResp,        // RequestVote response
  kPreVote,         // PreVote request (Raft thesis §9.6)
  kPreVoteResp,     // PreVote response
  kSnap,            // InstallSnapshot: one chunk of a snapshot
  kSnapResp,        // InstallSnapshot chunk acknowledgement / resume point
  kHeartbeat,       // leader heartbeat, carries commit and read context
  kHeartbeatResp,   // heartbeat response
  kTransferLeader,  // ask the leader to hand over to `from`
  kTimeoutNow,      // leader to transferee: campaign now (thesis §3.10)
  kReadIndex,       // read request (thesis §6.4)
  kReadIndexResp,   // read index granted by the leader
};

const char* MessageTypeName(MessageType type);
bool IsLocalMessage(MessageType type);
bool IsResponseMessage(MessageType type);

struct Message {
  MessageType type = MessageType::kHup;
  uint64_t to = kNone;
  uint64_t from = kNone;
  uint64_t term = 0;
  // For kApp: term and index of the entry just before `entries`.
  // For kVote/kPreVote: the candidate's last log term and index.
  // For kAppResp: the follower's last index (or the rejected index).
  // For a forwarded kProp: the term it was forwarded in (0: a local one).
  uint64_t log_term = 0;
  uint64_t index = 0;
  uint64_t commit = 0;
  std::vector<Entry> entries;
  bool reject = false;
  uint64_t reject_hint = 0;
  // For kTransferLeader, `index` is the transferee's id (it survives the
  // message being forwarded from a follower to the leader).
  // Read-index request context, or the leader-transfer marker on votes.
  std::string context;
  // For kSnap: `snapshot` holds the metadata and one chunk of the image,
  // starting at byte `snapshot_offset` of `snapshot_size`. For kSnapResp:
  // `index` names the snapshot and `snapshot_offset` is how many bytes the
  // follower holds (where the leader resumes).
  std::optional<Snapshot> snapshot;
  uint64_t snapshot_offset = 0;
  uint64_t snapshot_size = 0;

  std::string DebugString() const;
};

enum class StateType : uint8_t {
  kFollower,
  kCandidate,
  kLeader,
  kPreCandidate,
};

const char* StateTypeName(StateType state);

// Volatile state worth reporting; not persisted.
struct SoftState {
  uint64_t lead = kNone;
  StateType state = StateType::kFollower;

  bool operator==(const SoftState&) const = default;
};

// A read request that became safe to serve once the local applied index
// reaches `index` (thesis §6.4).
struct ReadState {
  uint64_t index = 0;
  std::string request_ctx;

  bool operator==(const ReadState&) const = default;
};

}  // namespace raftsql::core

#endif  // RAFTSQL_CORE_TYPES_H_
