#include "server/execute_stream.h"

#include <mutex>
#include <string>
#include <utility>

#include "core/check.h"
#include "server/convert.h"

namespace raftsql::server {
namespace {

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
  out->set_error(std::string(r.status().message()));
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
  explicit ExecuteStream(RaftServer* node) : node_(node) { StartRead(&in_); }

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
    }
    for (const v1::TaggedExecute& t : in_.requests()) {
      const uint64_t tag = t.tag();
      absl::StatusOr<sm::Command> cmd =
          CommandFromProto(t.request(), node_->options().max_request_bytes);
      if (!cmd.ok()) {
        Answer(tag, cmd.status());
        continue;
      }
      // Every request is answered exactly once (RaftServer's contract),
      // and the stream finishes only after the last answer: `this` lives.
      node_->Execute(
          std::move(*cmd),
          [this, tag](absl::StatusOr<sm::CommandResult> r) { Answer(tag, r); });
    }
    in_.Clear();
    bool read = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      read = !reads_done_ && Held() < kMaxStreamInFlight;
      read_paused_ = !read && !reads_done_;
    }
    if (read) StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> l(mu_);
    CHECK(writing_);
    out_.Clear();
    if (!ok) broken_ = true;  // Cancelled: answers have nowhere to go.
    if (broken_) pending_.Clear();
    const bool read = ResumeRead();
    if (pending_.results_size() > 0) {
      out_.Swap(&pending_);
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
  void Answer(uint64_t tag, const absl::StatusOr<sm::CommandResult>& r) {
    std::unique_lock<std::mutex> l(mu_);
    CHECK_GT(in_flight_, 0u);
    --in_flight_;
    if (!broken_) ToTagged(tag, r, pending_.add_results());
    const bool read = ResumeRead();
    const bool write = !writing_ && pending_.results_size() > 0;
    if (write) {
      writing_ = true;
      out_.Swap(&pending_);
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

  // Whether to start the read that the bound paused: once half of it has
  // drained (not at every answer). Under mu_.
  bool ResumeRead() {
    if (!read_paused_ || Held() > kMaxStreamInFlight / 2) return false;
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
  v1::ExecuteStreamRequest in_;  // The read in progress (gRPC's meanwhile).
  std::mutex mu_;
  v1::ExecuteStreamResponse out_;      // The write in progress.
  v1::ExecuteStreamResponse pending_;  // Answers waiting for the next write.
  size_t in_flight_ = 0;               // Read, not yet answered.
  bool reads_done_ = false;
  bool read_paused_ = false;  // At the in-flight bound; Answer resumes.
  bool writing_ = false;      // Invariant: out_ is gRPC's while set.
  bool broken_ = false;       // Cancelled or a write failed.
  bool finished_ = false;
};

}  // namespace

Reactor* NewExecuteStream(RaftServer* node) { return new ExecuteStream(node); }

}  // namespace raftsql::server
