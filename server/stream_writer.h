// A server stream fed by a producer thread (a read, a backup): Push
// queues a message, waiting while `max_queued` wait to be written, so that
// a slow client costs the node a bounded amount of memory; End finishes
// the stream once the queue is written. The reactor deletes itself when
// gRPC is done with it.
#ifndef RAFTSQL_SERVER_STREAM_WRITER_H_
#define RAFTSQL_SERVER_STREAM_WRITER_H_

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>

#include "absl/status/status.h"
#include "server/convert.h"

namespace raftsql::server {

template <typename Message>
class StreamWriter final : public grpc::ServerWriteReactor<Message> {
 public:
  StreamWriter(grpc::CallbackServerContext* ctx, size_t max_queued)
      : ctx_(ctx), max_queued_(max_queued) {}

  // Producer thread: queues `message` once there is room; CANCELLED once
  // the client is gone.
  absl::Status Push(Message message) {
    std::unique_lock<std::mutex> l(mu_);
    room_.wait(l,
               [this] { return cancelled_ || pending_.size() < max_queued_; });
    if (cancelled_) return absl::CancelledError("the client went away");
    pending_.push_back(std::move(message));
    MaybeWrite();
    return absl::OkStatus();
  }

  // Producer thread: it ended with `status`; the stream finishes once
  // what is queued is written. The producer never touches this again.
  void End(const absl::Status& status) {
    std::lock_guard<std::mutex> l(mu_);
    ended_ = true;
    end_ = ToGrpc(status, ctx_);
    MaybeFinish();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> l(mu_);
    writing_ = false;
    pending_.pop_front();
    if (!ok) cancelled_ = true;  // The stream broke: the read stops.
    room_.notify_all();
    if (cancelled_) {
      pending_.clear();
    } else {
      MaybeWrite();
    }
    MaybeFinish();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> l(mu_);
    cancelled_ = true;
    room_.notify_all();
  }

  void OnDone() override { delete this; }

 private:
  // Under mu_.
  void MaybeWrite() {
    if (writing_ || pending_.empty() || cancelled_) return;
    writing_ = true;
    this->StartWrite(&pending_.front());
  }
  void MaybeFinish() {
    if (!ended_ || writing_ || finished_) return;
    if (!pending_.empty() && !cancelled_) return;
    finished_ = true;
    this->Finish(cancelled_ && end_.ok()
                     ? grpc::Status(grpc::StatusCode::CANCELLED, "cancelled")
                     : end_);
  }

  grpc::CallbackServerContext* const ctx_;
  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable room_;
  // Invariant: size() <= max_queued_; the front is being written while
  // writing_.
  std::deque<Message> pending_;
  bool writing_ = false;
  bool cancelled_ = false;
  bool ended_ = false;
  bool finished_ = false;
  grpc::Status end_;
};

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_STREAM_WRITER_H_
