// A device's session on the hub with no transport, thread or clock of its
// own (DESIGN.md §6): what each message from the device becomes, what the
// results of the session's writes and reads become on the wire, and when
// the session must end. The server's edge service drives it over a gRPC
// stream on gRPC's and the Raft loop's threads; the simulator drives the
// same code over its simulated network and clock.
//
// The session never acts itself: each call returns its effects (messages to
// send, writes to propose, reads to run), each write or read with an op id
// whose result the driver hands back (OnWritten, OnRead). A driver that
// cannot propose a write (its bound) answers it with RESOURCE_EXHAUSTED.
//
// - Hello: validated; the edge tables are made (and what older releases'
//   tables lack added) first unless the driver knows they are current;
//   the Hello command opens the device's stream, and its
//   result becomes the Welcome (the driver then registers the session).
// - Uploads: validated (an invalid one is answered, nothing written), stored
//   by one command each, answered with the stream's acked sequence.
// - Commands: on Poke (and after the Welcome) the device's open commands are
//   read; those due are marked delivered through Raft one after another, in
//   issue order, and only a marked one is sent. A look asked for during
//   one runs once it ends.
// - Twins: the desired state is sent after the Welcome and when a look
//   finds a newer version; reports are stored, and a report that was not
//   stored ends the session (the edge reports again in its next one).
// - Outcomes are stored; one that is lost is repaired by redelivery.
#ifndef RAFTSQL_EDGE_HUB_SESSION_H_
#define RAFTSQL_EDGE_HUB_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "edge/hub_sql.h"
#include "net/edge.pb.h"
#include "sm/command.h"

namespace raftsql::edge {

// Commands a session reads per look, and so delivers unanswered at most.
inline constexpr int64_t kMaxOpenCommandsPerLook = 64;

struct HubSessionOptions {
  uint64_t node = 0;  // This node's id: in the Welcome and edge_devices.
  std::string name;   // The session's name, in edge_devices.session.
  int64_t command_lock_ms = 30'000;
  // Whether this node knows the edge tables exist and are current (then a
  // Hello does not propose them and their upgrade first).
  std::function<bool()> schema_known = [] { return false; };
};

struct HubEffects {
  struct Write {
    uint64_t op;
    sm::Command command;
    // False for the writes a session cannot go on without (the schema,
    // the Hello): a driver proposes them beyond its bound on writes.
    bool bounded = true;
  };
  struct Read {
    uint64_t op;
    sm::Statement query;
  };
  // In this order: first the messages, then the writes, then the reads.
  std::vector<v1::EdgeDown> sends;
  std::vector<Write> writes;
  std::vector<Read> reads;
  bool welcomed = false;     // A Welcome is among `sends`.
  bool schema_made = false;  // The edge tables now exist, current.
  // The session decided to end with this status (once).
  std::optional<absl::Status> end;
};

class HubSession {
 public:
  HubSession(HubSessionOptions options, std::string device);

  // A message from the device.
  void OnMessage(const v1::EdgeUp& up, int64_t now_ms, HubEffects* fx);
  // The result of the write `op` (RESOURCE_EXHAUSTED if it was not
  // proposed).
  void OnWritten(uint64_t op, const absl::StatusOr<sm::CommandResult>& r,
                 int64_t now_ms, HubEffects* fx);
  // The result of the read `op`.
  void OnRead(uint64_t op, const absl::StatusOr<sm::QueryResult>& q,
              int64_t now_ms, HubEffects* fx);
  // The device's commands (locks may have run out) or desired twin
  // changed.
  void Poke(bool commands, bool twin, HubEffects* fx);
  // The session ends (from the driver: superseded, shutting down, its
  // node out of touch): nothing new starts. The first status stays.
  void End(absl::Status status);
  // The device sends nothing more; what is in flight completes.
  void InputDone() { input_done_ = true; }

  // The write that shows the device disconnected, once the session went
  // (if it was welcomed).
  std::optional<sm::Command> Goodbye(int64_t now_ms) const;

  bool welcomed() const { return welcomed_; }
  bool ending() const { return ending_; }
  const absl::Status& end_status() const { return end_status_; }
  // Writes and reads asked for and not yet answered.
  size_t pending() const { return pending_.size(); }
  // Of those, uploads (a few: the driver bounds them).
  size_t uploads_in_flight() const;
  const std::string& device() const { return device_; }
  const std::string& name() const { return options_.name; }

 private:
  enum class Kind {
    kSchema,
    kUpgrade,
    kHello,
    kUpload,
    kOutcome,
    kTwin,
    kDeliver,
    kLook,
    kDesired
  };
  struct Pending {
    Kind kind;
    uint64_t batch = 0;  // kUpload.
  };

  // Welcomed, not ending, still reading: new operations may start.
  bool Live() const { return welcomed_ && !ending_ && !input_done_; }
  void EndWith(absl::Status status, HubEffects* fx);
  void Send(v1::EdgeDown down, HubEffects* fx);
  uint64_t Write(Kind kind, sm::Command c, HubEffects* fx, bool bounded = true);
  void Read(Kind kind, sm::Statement q, HubEffects* fx);

  void OnHello(const v1::Hello& hello, int64_t now_ms, HubEffects* fx);
  void SayHello(int64_t now_ms, HubEffects* fx);
  void OnUpload(const v1::Upload& upload, int64_t now_ms, HubEffects* fx);
  void LookForCommands(HubEffects* fx);
  void OnLook(const absl::StatusOr<sm::QueryResult>& q, int64_t now_ms,
              HubEffects* fx);
  void DeliverNext(int64_t now_ms, HubEffects* fx);
  void LookDone(HubEffects* fx);

  const HubSessionOptions options_;
  const std::string device_;
  std::string incarnation_;
  uint64_t stream_ = 0;
  bool said_hello_ = false;
  bool welcomed_ = false;
  bool ending_ = false;
  bool input_done_ = false;
  absl::Status end_status_;
  uint64_t next_op_ = 1;
  std::map<uint64_t, Pending> pending_;
  uint64_t desired_sent_ = 0;
  // The look in progress: the due commands' ids, the next to deliver.
  bool looking_ = false;
  bool look_again_ = false;
  std::vector<std::string> due_;
  size_t next_due_ = 0;
};

}  // namespace raftsql::edge

#endif  // RAFTSQL_EDGE_HUB_SESSION_H_
