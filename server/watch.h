// The server side of DatabaseService.Watch. Each stream reads the node's
// change log (sm/change_log.h) through a cursor of its own; one thread
// serves every stream: it reads at most kWatchPageBytes of changes for a
// stream whose last message was written, keeps those of its tables, and
// writes them. A slow client therefore holds one message in flight and its
// cursor's place in the files, never memory that grows, and never the
// Raft loop (which only appends and wakes the thread). A client that falls
// behind what the log keeps gets OUT_OF_RANGE and resumes from where it
// was, on this node or another.
#ifndef RAFTSQL_SERVER_WATCH_H_
#define RAFTSQL_SERVER_WATCH_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "net/raftsql.grpc.pb.h"
#include "sm/change_log.h"

namespace raftsql::server {

inline constexpr size_t kWatchPageBytes = size_t{1} << 20;
inline constexpr size_t kMaxWatchers = 256;
// A stream whose tables did not change hears the index it has reached at
// most this often.
inline constexpr std::chrono::milliseconds kWatchProgressEvery{1000};

class WatchHub {
 public:
  // `log` may be null (no change log: Watch is refused).
  explicit WatchHub(sm::ChangeLog* log);
  ~WatchHub();

  grpc::ServerWriteReactor<v1::WatchResponse>* Start(
      grpc::CallbackServerContext* ctx, const v1::WatchRequest& request);
  // Ends every stream (UNAVAILABLE: the node is stopping) and the thread.
  void Shutdown();

  class Stream;

 private:
  void Run();
  // Under mu_: the next message of `s`, written, or its end.
  void Serve(Stream* s);

  // What wakes the thread: the log's listener holds it too, so that an
  // append racing with Shutdown touches nothing freed.
  struct Wake {
    std::mutex mu;
    std::condition_variable cv;
    bool pending = false;  // Guarded by mu.
    void Signal() {
      std::lock_guard<std::mutex> l(mu);
      pending = true;
      cv.notify_one();
    }
  };

  sm::ChangeLog* const log_;
  const std::shared_ptr<Wake> wake_ = std::make_shared<Wake>();
  std::mutex mu_;
  bool stopping_ = false;      // Guarded by mu_.
  std::set<Stream*> streams_;  // Guarded by mu_; each until its OnDone.
  std::thread thread_;
};

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_WATCH_H_
