// GrpcTimerKick: keeps gRPC's timers firing when the wall clock steps.
//
// Debian 12's absl (20220623) waits on absolute wall-clock deadlines, and
// gRPC 1.51's timer threads wait through it: when the system clock steps
// back (or a process's clock reads ahead, as the nemesis makes it), a timer
// thread already waiting sleeps that much longer, and with it gRPC's
// reconnection backoffs and deadlines: the nemesis saw 58 s without a
// write. A timer earlier than the one a timer thread waits for wakes it;
// this sets one every kEvery on a completion queue of its own, so no timer
// waits more than about kEvery past its time.
#ifndef RAFTSQL_SERVER_GRPC_TIMER_KICK_H_
#define RAFTSQL_SERVER_GRPC_TIMER_KICK_H_

#include <grpcpp/alarm.h>
#include <grpcpp/completion_queue.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace raftsql::server {

class GrpcTimerKick {
 public:
  static constexpr std::chrono::milliseconds kEvery{100};

  GrpcTimerKick();
  // Stops the thread (within about kEvery).
  ~GrpcTimerKick();

 private:
  void Run();

  std::atomic<bool> stop_{false};
  grpc::CompletionQueue cq_;
  std::thread thread_;
};

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_GRPC_TIMER_KICK_H_
