#include "server/watch.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/convert.h"

namespace raftsql::server {

class WatchHub::Stream final
    : public grpc::ServerWriteReactor<v1::WatchResponse> {
 public:
  Stream(WatchHub* hub, std::unique_ptr<sm::ChangeLog::Cursor> cursor,
         std::set<std::string> tables)
      : hub_(hub), cursor_(std::move(cursor)), tables_(std::move(tables)) {}

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> l(hub_->mu_);
    writing_ = false;
    if (!ok) broken_ = true;
    hub_->wake_->Signal();  // Serve it again.
  }
  void OnCancel() override {
    std::lock_guard<std::mutex> l(hub_->mu_);
    broken_ = true;
    hub_->wake_->Signal();
  }
  void OnDone() override {
    {
      std::lock_guard<std::mutex> l(hub_->mu_);
      hub_->streams_.erase(this);
    }
    delete this;
  }

 private:
  friend class WatchHub;
  // Under the hub's mu_.
  void End(grpc::Status status) {
    if (finished_) return;
    finished_ = true;
    Finish(std::move(status));
  }
  bool Wants(const std::string& table) const {
    return tables_.empty() || tables_.count(absl::AsciiStrToLower(table)) > 0;
  }

  WatchHub* const hub_;
  std::unique_ptr<sm::ChangeLog::Cursor> cursor_;
  const std::set<std::string> tables_;  // Lower case; empty: all.
  v1::WatchResponse message_;           // The one in flight.
  bool writing_ = false;
  bool broken_ = false;
  bool finished_ = false;
  uint64_t sent_index_ = 0;
  std::chrono::steady_clock::time_point progress_at_{};
};

namespace {

class Refused final : public grpc::ServerWriteReactor<v1::WatchResponse> {
 public:
  explicit Refused(grpc::Status s) { Finish(std::move(s)); }
  void OnDone() override { delete this; }
};

}  // namespace

WatchHub::WatchHub(sm::ChangeLog* log) : log_(log) {
  if (log_ == nullptr) return;
  log_->SetListener([wake = wake_] { wake->Signal(); });
  thread_ = std::thread([this] { Run(); });
}

WatchHub::~WatchHub() { Shutdown(); }

void WatchHub::Shutdown() {
  {
    std::unique_lock<std::mutex> l(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (Stream* s : streams_) {
      s->End(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "the node is stopping; resume on another"));
    }
  }
  wake_->Signal();
  if (thread_.joinable()) thread_.join();
  if (log_ != nullptr) log_->SetListener(nullptr);
}

grpc::ServerWriteReactor<v1::WatchResponse>* WatchHub::Start(
    grpc::CallbackServerContext* ctx, const v1::WatchRequest& request) {
  (void)ctx;
  if (log_ == nullptr) {
    return new Refused(
        grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                     "this node keeps no change log (--change_log_bytes=0)"));
  }
  std::set<std::string> tables;
  for (const std::string& t : request.tables()) {
    if (t.empty() || t.size() > 1024) {
      return new Refused(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                      "a table name is empty or too long"));
    }
    tables.insert(absl::AsciiStrToLower(t));
  }
  if (tables.size() > 1024) {
    return new Refused(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                    "at most 1024 tables per watch"));
  }
  const uint64_t from =
      std::max<uint64_t>(request.from_index(),
                         request.from_index() == 0 ? log_->first_index() : 0);
  absl::StatusOr<std::unique_ptr<sm::ChangeLog::Cursor>> cursor =
      log_->Read(from);
  if (!cursor.ok()) return new Refused(ToGrpc(cursor.status(), nullptr));
  std::lock_guard<std::mutex> l(mu_);
  if (stopping_) {
    return new Refused(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "the node is stopping"));
  }
  if (streams_.size() >= kMaxWatchers) {
    return new Refused(grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("this node serves at most ", kMaxWatchers, " watches")));
  }
  auto* s = new Stream(this, std::move(*cursor), std::move(tables));
  s->sent_index_ = from - 1;
  streams_.insert(s);
  wake_->Signal();
  return s;
}

void WatchHub::Run() {
  while (true) {
    {
      std::unique_lock<std::mutex> w(wake_->mu);
      wake_->cv.wait_for(w, kWatchProgressEvery,
                         [this] { return wake_->pending; });
      wake_->pending = false;
    }
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    for (Stream* s : streams_) Serve(s);
  }
}

void WatchHub::Serve(Stream* s) {
  if (s->finished_ || s->writing_) return;
  if (s->broken_) {
    s->End(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
    return;
  }
  s->message_.Clear();
  uint64_t covered = 0;
  size_t bytes = 0;
  // Pages of changes none of whose tables it watches are skipped here,
  // a bounded number per turn so that other streams get theirs.
  for (int page = 0; page < 16 && s->message_.changes_size() == 0; ++page) {
    absl::StatusOr<std::vector<sm::Change>> changes =
        s->cursor_->Next(kWatchPageBytes, &covered);
    if (!changes.ok()) {
      s->End(ToGrpc(changes.status(), nullptr));
      return;
    }
    if (changes->empty()) break;
    for (const sm::Change& c : *changes) {
      if (!s->Wants(c.table)) continue;
      v1::Change* out = s->message_.add_changes();
      out->set_index(c.index);
      out->set_table(c.table);
      out->set_op(static_cast<v1::Change::Op>(c.op));
      out->set_rowid(c.rowid);
      out->set_old_rowid(c.old_rowid);
      for (const sm::Value& v : c.values) {
        ToProto(v, out->add_values());
        bytes += sm::ValueBytes(v);
      }
    }
    if (bytes >= kWatchPageBytes) break;
  }
  const auto now = std::chrono::steady_clock::now();
  const bool progress =
      covered > s->sent_index_ && now - s->progress_at_ >= kWatchProgressEvery;
  // Progress not yet due goes out at a later turn (Run wakes at least
  // once a kWatchProgressEvery).
  if (s->message_.changes_size() == 0 && !progress) return;
  s->message_.set_index(covered);
  s->sent_index_ = covered;
  s->progress_at_ = now;
  s->writing_ = true;
  s->StartWrite(&s->message_);
}

}  // namespace raftsql::server
