#include "server/query_stream.h"

#include <condition_variable>
#include <deque>
#include <mutex>

#include "server/convert.h"

namespace raftsql::server {
namespace {

class QueryStreamWriter final
    : public grpc::ServerWriteReactor<v1::QueryResponse> {
 public:
  explicit QueryStreamWriter(grpc::CallbackServerContext* ctx) : ctx_(ctx) {}

  // Reader thread: queues `page` once there is room; CANCELLED once the
  // client is gone.
  absl::Status Push(sm::QueryResult page) {
    v1::QueryResponse message;
    ToProto(page, &message);
    std::unique_lock<std::mutex> l(mu_);
    room_.wait(l, [this] {
      return cancelled_ || pending_.size() < kQueryPagesQueued;
    });
    if (cancelled_) return absl::CancelledError("the client went away");
    pending_.push_back(std::move(message));
    MaybeWrite();
    return absl::OkStatus();
  }

  // Reader thread: the read ended with `status`; the stream finishes once
  // what is queued is written. The reader never touches this again.
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
    StartWrite(&pending_.front());
  }
  void MaybeFinish() {
    if (!ended_ || writing_ || finished_) return;
    if (!pending_.empty() && !cancelled_) return;
    finished_ = true;
    Finish(cancelled_ && end_.ok()
               ? grpc::Status(grpc::StatusCode::CANCELLED, "cancelled")
               : end_);
  }

  grpc::CallbackServerContext* const ctx_;
  std::mutex mu_;
  std::condition_variable room_;
  // Invariant: size() <= kQueryPagesQueued; the front is being written
  // while writing_.
  std::deque<v1::QueryResponse> pending_;
  bool writing_ = false;
  bool cancelled_ = false;
  bool ended_ = false;
  bool finished_ = false;
  grpc::Status end_;
};

}  // namespace

grpc::ServerWriteReactor<v1::QueryResponse>* NewQueryStream(
    RaftServer* node, grpc::CallbackServerContext* ctx,
    const v1::QueryRequest& request, sm::ReadLimits limits) {
  auto* writer = new QueryStreamWriter(ctx);
  node->QueryStream(
      FromProto(request.statement()), request.consistency() == v1::LINEARIZABLE,
      std::move(limits),
      [writer](sm::QueryResult page) { return writer->Push(std::move(page)); },
      [writer](absl::Status s) { writer->End(s); });
  return writer;
}

}  // namespace raftsql::server
