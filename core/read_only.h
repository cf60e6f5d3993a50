// Pending ReadIndex requests on the leader (Raft thesis §6.4): each waits for
// a heartbeat round in which a majority confirms the leader still leads.
#ifndef RAFTSQL_CORE_READ_ONLY_H_
#define RAFTSQL_CORE_READ_ONLY_H_

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/types.h"

namespace raftsql::core {

struct ReadIndexStatus {
  Message request;  // from == kNone or the leader itself: a local request.
  uint64_t index = 0;
  std::map<uint64_t, bool> acks;
};

class ReadOnly {
 public:
  // Registers a request for read index `index` under its context. A duplicate
  // context is ignored (the first request wins).
  void AddRequest(uint64_t index, const Message& request);
  // Records that `id` acknowledged the heartbeat carrying `ctx`; returns the
  // acks so far, or nullptr if `ctx` is unknown.
  const std::map<uint64_t, bool>* RecvAck(uint64_t id, const std::string& ctx);
  // Removes and returns every request up to and including `ctx`: a quorum for
  // a later heartbeat confirms the earlier requests too.
  std::vector<ReadIndexStatus> Advance(const std::string& ctx);
  std::string LastPendingContext() const;
  size_t size() const { return queue_.size(); }

 private:
  std::map<std::string, ReadIndexStatus> pending_;
  std::deque<std::string> queue_;  // Invariant: same keys as pending_.
};

}  // namespace raftsql::core

#endif  // RAFTSQL_CORE_READ_ONLY_H_
