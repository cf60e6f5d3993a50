#include "core/read_only.h"

#include "core/check.h"

namespace raftsql::core {

void ReadOnly::AddRequest(uint64_t index, const Message& request) {
  if (pending_.count(request.context) > 0) return;
  ReadIndexStatus status;
  status.request = request;
  status.index = index;
  pending_.emplace(request.context, std::move(status));
  queue_.push_back(request.context);
  CHECK_EQ(pending_.size(), queue_.size());
}

const std::map<uint64_t, bool>* ReadOnly::RecvAck(uint64_t id,
                                                  const std::string& ctx) {
  auto it = pending_.find(ctx);
  if (it == pending_.end()) return nullptr;
  it->second.acks[id] = true;
  return &it->second.acks;
}

std::vector<ReadIndexStatus> ReadOnly::Advance(const std::string& ctx) {
  std::vector<ReadIndexStatus> out;
  if (pending_.count(ctx) == 0) return out;
  while (!queue_.empty()) {
    std::string front = std::move(queue_.front());
    queue_.pop_front();
    auto it = pending_.find(front);
    CHECK(it != pending_.end());
    out.push_back(std::move(it->second));
    pending_.erase(it);
    if (front == ctx) break;
  }
  CHECK_EQ(pending_.size(), queue_.size());
  return out;
}

std::string ReadOnly::LastPendingContext() const {
  return queue_.empty() ? std::string() : queue_.back();
}

}  // namespace raftsql::core
