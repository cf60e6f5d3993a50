#include "net/execute_stream_client.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "net/client.h"

namespace raftsql::net {

ExecuteStreamClient::ExecuteStreamClient(v1::DatabaseService::Stub* stub,
                                         OnAnswer on_answer,
                                         const std::string& authorization)
    : on_answer_(std::move(on_answer)) {
  if (!authorization.empty()) ctx_.AddMetadata("authorization", authorization);
  stub->async()->ExecuteStream(&ctx_, this);
  StartRead(&in_);
  // Keeps the stream open after the reads end (on error) until OnDone.
  AddHold();
  StartCall();
}

ExecuteStreamClient::~ExecuteStreamClient() { (void)Close(); }

bool ExecuteStreamClient::Send(uint64_t tag, v1::ExecuteRequest request) {
  std::unique_lock<std::mutex> l(mu_);
  if (closing_ || failed_ || reads_ended_) return false;
  unanswered_.insert(tag);
  v1::TaggedExecute* t = pending_.add_requests();
  t->set_tag(tag);
  *t->mutable_request() = std::move(request);
  if (writing_) return true;  // It goes with the next write.
  WriteNext(l);
  return true;
}

void ExecuteStreamClient::WriteNext(std::unique_lock<std::mutex>& l) {
  if (!failed_ && !reads_ended_ && pending_.requests_size() > 0) {
    writing_ = true;
    out_.Swap(&pending_);
    l.unlock();
    StartWrite(&out_);
    return;
  }
  writing_ = false;
  const bool half_close =
      closing_ && !half_closed_ && !failed_ && !reads_ended_;
  if (half_close) {
    half_closed_ = true;
    l.unlock();
    StartWritesDone();
    return;
  }
  MaybeRelease(l);
}

void ExecuteStreamClient::MaybeRelease(std::unique_lock<std::mutex>& l) {
  // The hold keeps OnDone away while Send may still start a write from
  // outside gRPC's reactions; once none can start, it goes (exactly once).
  if (hold_released_ || writing_ || !(failed_ || reads_ended_)) {
    l.unlock();
    return;
  }
  hold_released_ = true;
  l.unlock();
  RemoveHold();
}

void ExecuteStreamClient::OnWriteDone(bool ok) {
  std::unique_lock<std::mutex> l(mu_);
  out_.Clear();
  if (!ok) {
    // The stream is broken: OnDone follows with its status and answers
    // what is left unanswered.
    failed_ = true;
    pending_.Clear();
  }
  WriteNext(l);
}

void ExecuteStreamClient::OnReadDone(bool ok) {
  if (!ok) {  // No more answers: the stream is ending.
    std::unique_lock<std::mutex> l(mu_);
    reads_ended_ = true;
    pending_.Clear();
    MaybeRelease(l);
    return;
  }
  for (v1::TaggedResult& r : *in_.mutable_results()) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (unanswered_.erase(r.tag()) == 0) continue;  // Not ours: ignore.
    }
    if (r.code() == 0) {
      on_answer_(r.tag(), std::move(*r.mutable_response()));
    } else {
      std::string message = r.error();
      if (!r.leader().empty()) {
        absl::StrAppend(&message, " (leader ", r.leader(), ")");
      }
      on_answer_(r.tag(), absl::Status(static_cast<absl::StatusCode>(r.code()),
                                       message));
    }
  }
  in_.Clear();
  StartRead(&in_);
}

void ExecuteStreamClient::OnDone(const grpc::Status& status) {
  std::vector<uint64_t> lost;
  {
    std::lock_guard<std::mutex> l(mu_);
    lost.assign(unanswered_.begin(), unanswered_.end());
    unanswered_.clear();
    status_ = status;
  }
  // The server answers everything before it finishes a stream it was not
  // told to cancel; whatever is left had its outcome lost with the stream.
  const absl::Status why =
      status.ok() ? absl::UnavailableError(
                        "the stream ended before the answer; outcome unknown")
                  : absl::UnavailableError(
                        absl::StrCat("stream failed: ", status.error_message(),
                                     "; outcome unknown"));
  for (uint64_t tag : lost) on_answer_(tag, why);
  std::lock_guard<std::mutex> l(mu_);
  done_ = true;
  done_cv_.notify_all();
}

absl::Status ExecuteStreamClient::Close() {
  std::unique_lock<std::mutex> l(mu_);
  if (!closing_) {
    closing_ = true;
    if (!writing_) {
      WriteNext(l);
      l = std::unique_lock<std::mutex>(mu_);
    }
  }
  done_cv_.wait(l, [this] { return done_; });
  return FromGrpc(status_);
}

}  // namespace raftsql::net
