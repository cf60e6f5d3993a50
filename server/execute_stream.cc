#include "server/execute_stream.h"

#include <atomic>
#include <mutex>
#include <string>
#include <utility>

#include "core/check.h"
#include "server/convert.h"

namespace raftsql::server {
namespace {

std::atomic<uint64_t> byte_pauses{0};

using Reactor = grpc::ServerBidiReactor<v1::ExecuteStreamRequest,
                                        v1::ExecuteStreamResponse>;

void ToTagged(uint64_t tag, const absl::StatusOr<sm::CommandResult>& r,
              v1::TaggedResult* out) {
  out->set_tag(tag);
  if (r.ok()) {
    ToProto(*r, out->mutable_response());
    return;
  }
  out->set_code(static_cast<int32_t>(r.status().code()));
  out->set_error(sm::TruncatedMessage(r.status().message()));
  if (auto leader = r.status().GetPayload(kLeaderPayload)) {
    out->set_leader(std::string(*leader));
  }
  out->set_no_leader(r.status().GetPayload(kNoLeaderPayload).has_value());
}

// gRPC runs the reactions (OnReadDone, OnWriteDone, OnCancel) on its
// threads and the answers arrive on the Raft loop or at once: mu_ guards
// the state they share. Start* and Finish are called with mu_ released (a
// reaction may run inline).
class ExecuteStream final : public Reactor {
 public:
  ExecuteStream(RaftServer* node, std::string user)
      : node_(node),
        user_(std::move(user)),
        max_held_bytes_(node->options().stream_held_bytes_max) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // The client closed its side, or the stream broke.
      std::unique_lock<std::mutex> l(mu_);
      reads_done_ = true;
      MaybeFinish(l);
      return;
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      in_flight_ += static_cast<size_t>(in_.requests_size());
      for (const v1::TaggedExecute& t : in_.requests()) {
        held_bytes_ += t.ByteSizeLong();
      }
    }
    for (const v1::TaggedExecute& t : in_.requests()) {
      const uint64_t tag = t.tag();
      const size_t bytes = t.ByteSizeLong();
      absl::StatusOr<sm::Command> cmd =
          CommandFromProto(t.request(), node_->options().max_request_bytes);
      if (!cmd.ok()) {
        Answer(tag, bytes, cmd.status());
        continue;
      }
      cmd->user = user_;
      // Every request is answered exactly once (RaftServer's contract),
      // and the stream finishes only after the last answer: `this` lives.
      node_->Execute(std::move(*cmd),
                     [this, tag, bytes](absl::StatusOr<sm::CommandResult> r) {
                       Answer(tag, bytes, r);
                     });
    }
    in_.Clear();
    bool read = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      read = !reads_done_ && !OverBound();
      read_paused_ = !read && !reads_done_;
    }
    if (read) StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> l(mu_);
    CHECK(writing_);
    CHECK_GE(held_bytes_, writing_bytes_);
    held_bytes_ -= writing_bytes_;
    writing_bytes_ = 0;
    out_.Clear();
    if (!ok) broken_ = true;  // Cancelled: answers have nowhere to go.
    if (broken_) {
      pending_.Clear();
      held_bytes_ -= pending_bytes_;
      pending_bytes_ = 0;
    }
    const bool read = ResumeRead();
    if (pending_.results_size() > 0) {
      out_.Swap(&pending_);
      writing_bytes_ = pending_bytes_;
      pending_bytes_ = 0;
      l.unlock();
      if (read) StartRead(&in_);
      StartWrite(&out_);
      return;
    }
    writing_ = false;
    MaybeFinish(l);
    if (l.owns_lock()) l.unlock();
    if (read) StartRead(&in_);
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> l(mu_);
    broken_ = true;
  }

  void OnDone() override { delete this; }

 private:
  // `request_bytes`: the size of the request answered (no longer held).
  void Answer(uint64_t tag, size_t request_bytes,
              const absl::StatusOr<sm::CommandResult>& r) {
    std::unique_lock<std::mutex> l(mu_);
    CHECK_GT(in_flight_, 0u);
    CHECK_GE(held_bytes_, request_bytes);
    --in_flight_;
    held_bytes_ -= request_bytes;
    if (!broken_) {
      v1::TaggedResult* out = pending_.add_results();
      ToTagged(tag, r, out);
      const size_t answer = out->ByteSizeLong();
      pending_bytes_ += answer;
      held_bytes_ += answer;
    }
    const bool read = ResumeRead();
    const bool write = !writing_ && pending_.results_size() > 0;
    if (write) {
      writing_ = true;
      out_.Swap(&pending_);
      writing_bytes_ = pending_bytes_;
      pending_bytes_ = 0;
    }
    if (!write) MaybeFinish(l);
    if (l.owns_lock()) l.unlock();
    if (read) StartRead(&in_);
    if (write) StartWrite(&out_);
  }

  // Requests read and not yet written back: what the bound limits (answers
  // count until written, or a client that never reads them would make the
  // server queue without bound).
  size_t Held() const {
    return in_flight_ + static_cast<size_t>(pending_.results_size()) +
           (writing_ ? static_cast<size_t>(out_.results_size()) : 0);
  }

  // At a bound: read no more. Under mu_.
  bool OverBound() const {
    if (held_bytes_ >= max_held_bytes_) {
      byte_pauses.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    return Held() >= kMaxStreamInFlight;
  }

  // Whether to start the read that the bounds paused: once half of each has
  // drained (not at every answer). Under mu_.
  bool ResumeRead() {
    if (!read_paused_ || Held() > kMaxStreamInFlight / 2 ||
        held_bytes_ > max_held_bytes_ / 2) {
      return false;
    }
    read_paused_ = false;
    return true;
  }

  // Finishes once the client is done sending and everything it sent has
  // been answered and written. Releases `l` if it finishes.
  void MaybeFinish(std::unique_lock<std::mutex>& l) {
    if (finished_ || !reads_done_ || in_flight_ > 0 || writing_) return;
    CHECK_EQ(pending_.results_size(), 0);
    finished_ = true;
    l.unlock();
    Finish(grpc::Status::OK);
  }

  RaftServer* const node_;
  const std::string user_;
  const size_t max_held_bytes_;
  v1::ExecuteStreamRequest in_;  // The read in progress (gRPC's meanwhile).
  std::mutex mu_;
  v1::ExecuteStreamResponse out_;      // The write in progress.
  v1::ExecuteStreamResponse pending_;  // Answers waiting for the next write.
  size_t in_flight_ = 0;               // Read, not yet answered.
  // Bytes of requests in flight and of answers not yet written; of those,
  // pending_'s and out_'s (while writing).
  size_t held_bytes_ = 0;
  size_t pending_bytes_ = 0;
  size_t writing_bytes_ = 0;
  bool reads_done_ = false;
  bool read_paused_ = false;  // At the in-flight bound; Answer resumes.
  bool writing_ = false;      // Invariant: out_ is gRPC's while set.
  bool broken_ = false;       // Cancelled or a write failed.
  bool finished_ = false;
};

}  // namespace

Reactor* NewExecuteStream(RaftServer* node, std::string user) {
  return new ExecuteStream(node, std::move(user));
}

uint64_t ExecuteStreamBytePauses() { return byte_pauses.load(); }

}  // namespace raftsql::server
