#include "server/grpc_timer_kick.h"

namespace raftsql::server {

GrpcTimerKick::GrpcTimerKick() : thread_([this] { Run(); }) {}

GrpcTimerKick::~GrpcTimerKick() {
  stop_.store(true);
  thread_.join();
  cq_.Shutdown();
  void* tag;
  bool ok;
  while (cq_.Next(&tag, &ok)) {
  }
}

void GrpcTimerKick::Run() {
  while (!stop_.load()) {
    // A deadline relative to now: gRPC converts it with the process's own
    // clocks, so it is kEvery / 2 away whatever the wall clock reads.
    grpc::Alarm alarm;
    alarm.Set(&cq_, std::chrono::system_clock::now() + kEvery / 2, this);
    void* tag;
    bool ok;
    if (!cq_.Next(&tag, &ok)) return;
    std::this_thread::sleep_for(kEvery / 2);
  }
}

}  // namespace raftsql::server
