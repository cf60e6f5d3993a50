// grpc_unary: what one unary call costs a server on this host, with gRPC's
// callback API (as server/service.cc serves) against an asynchronous server
// whose threads each wait on their own completion queue (issue 17: the
// callback API's threads switched 5-7 times a read at one client). The
// server answers a Query with one row at once, in a child process; the
// client calls from --concurrency threads. Prints calls/s, p50/p99, and the
// server's CPU and thread switches a call.
//
//   bazel-bin/bench/grpc_unary --server=callback|async [--threads=1]
//       [--concurrency=1] [--calls=20000] [--serve_only]
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "bench/process_cpu.h"
#include "net/raftsql.grpc.pb.h"

ABSL_FLAG(std::string, server, "callback", "callback or async");
ABSL_FLAG(int, threads, 1, "async: completion queues, a thread each");
ABSL_FLAG(int, concurrency, 1, "client threads, one call at a time each");
ABSL_FLAG(int, calls, 20000, "calls in all (bounded: at most 1,000,000)");
ABSL_FLAG(bool, serve_only, false,
          "only serve (for `load --nodes`), until killed");

namespace raftsql::bench {
namespace {

using Clock = std::chrono::steady_clock;

void Fill(v1::QueryResponse* r) {
  r->add_columns("v");
  r->add_declared_types("INTEGER");
  r->add_rows()->add_values()->set_integer(42);
}

// Execute and Status answer at once too: `load --nodes` finds its leader
// and creates its table first.
template <class Base>
class CallbackExecute : public Base {
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx,
                                   const v1::StatusRequest*,
                                   v1::StatusResponse* response) override {
    response->set_role("Leader");
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* Execute(grpc::CallbackServerContext* ctx,
                                    const v1::ExecuteRequest*,
                                    v1::ExecuteResponse*) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

class CallbackQuery final
    : public CallbackExecute<v1::DatabaseService::CallbackService> {
  grpc::ServerUnaryReactor* Query(grpc::CallbackServerContext* ctx,
                                  const v1::QueryRequest*,
                                  v1::QueryResponse* response) override {
    Fill(response);
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// Query asynchronous, Execute and Status on the callback API (a method's
// callback handler must never be installed: gRPC then takes it for a
// callback method), the rest synchronous (unimplemented), as reflection is.
using AsyncQuery = v1::DatabaseService::WithAsyncMethod_Query<
    CallbackExecute<v1::DatabaseService::WithCallbackMethod_Execute<
        v1::DatabaseService::WithCallbackMethod_Status<
            v1::DatabaseService::Service>>>>;

// One call of the asynchronous server: requested, then answered.
struct AsyncCall {
  explicit AsyncCall(AsyncQuery* service, grpc::ServerCompletionQueue* cq)
      : responder(&ctx) {
    service->RequestQuery(&ctx, &request, &responder, cq, cq, this);
  }
  grpc::ServerContext ctx;
  v1::QueryRequest request;
  v1::QueryResponse response;
  grpc::ServerAsyncResponseWriter<v1::QueryResponse> responder;
  bool answered = false;
};

void ServeQueue(AsyncQuery* service, grpc::ServerCompletionQueue* cq) {
  constexpr int kRequested = 64;  // Calls waiting for a client, per queue.
  for (int i = 0; i < kRequested; ++i) new AsyncCall(service, cq);
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) {
    auto* call = static_cast<AsyncCall*>(tag);
    if (call->answered || !ok) {
      delete call;
      continue;
    }
    new AsyncCall(service, cq);
    Fill(&call->response);
    call->answered = true;
    call->responder.Finish(call->response, grpc::Status::OK, call);
  }
}

// Runs the server until killed; writes its port to `port_fd`.
[[noreturn]] void Serve(const std::string& mode, int threads, int port_fd) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  CallbackQuery callback;
  AsyncQuery async;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  if (mode == "async") {
    builder.RegisterService(&async);
    for (int i = 0; i < threads; ++i) {
      queues.push_back(builder.AddCompletionQueue());
    }
  } else {
    builder.RegisterService(&callback);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) _exit(2);
  if (port_fd < 0) {
    std::printf("serving on 127.0.0.1:%d\n", port);
    std::fflush(stdout);
  } else if (write(port_fd, &port, sizeof(port)) != sizeof(port)) {
    _exit(2);
  }
  std::vector<std::thread> serving;
  for (auto& q : queues) serving.emplace_back(ServeQueue, &async, q.get());
  server->Wait();  // Killed by the parent.
  _exit(0);
}

// Context switches of every thread of `pid` so far.
long Switches(pid_t pid) {
  long total = 0;
  std::error_code error;
  for (const auto& task : std::filesystem::directory_iterator(
           absl::StrCat("/proc/", pid, "/task"), error)) {
    std::ifstream status(task.path() / "status");
    std::string key;
    while (status >> key) {
      if (key == "voluntary_ctxt_switches:" ||
          key == "nonvoluntary_ctxt_switches:") {
        long value = 0;
        status >> value;
        total += value;
      }
    }
  }
  return total;
}

int Run() {
  const std::string mode = absl::GetFlag(FLAGS_server);
  const int threads = std::clamp(absl::GetFlag(FLAGS_threads), 1, 64);
  const int concurrency = std::clamp(absl::GetFlag(FLAGS_concurrency), 1, 256);
  const int calls = std::clamp(absl::GetFlag(FLAGS_calls), 1, 1000000);
  if (mode != "callback" && mode != "async") {
    std::fprintf(stderr, "--server is callback or async\n");
    return 2;
  }
  if (absl::GetFlag(FLAGS_serve_only)) Serve(mode, threads, -1);
  int fds[2];
  if (pipe(fds) != 0) return 1;
  const pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    Serve(mode, threads, fds[1]);
  }
  close(fds[1]);
  int port = 0;
  const bool started = read(fds[0], &port, sizeof(port)) == sizeof(port);
  close(fds[0]);
  int result = 1;
  if (started) {
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                       grpc::InsecureChannelCredentials());
    auto stub = v1::DatabaseService::NewStub(channel);
    v1::QueryRequest request;
    request.mutable_statement()->set_sql("SELECT v FROM bench WHERE k = ?");
    // Warm up, then measure.
    for (int i = 0; i < 200; ++i) {
      grpc::ClientContext ctx;
      v1::QueryResponse r;
      (void)stub->Query(&ctx, request, &r);
    }
    std::atomic<int> next{0};
    std::atomic<int> failed{0};
    std::vector<std::vector<double>> latencies(concurrency);
    const double cpu0 = ProcessCpuSeconds(child);
    const long switches0 = Switches(child);
    const auto t0 = Clock::now();
    std::vector<std::thread> clients;
    for (int c = 0; c < concurrency; ++c) {
      clients.emplace_back([&, c] {
        while (next.fetch_add(1) < calls) {
          grpc::ClientContext ctx;
          v1::QueryResponse r;
          const auto start = Clock::now();
          if (!stub->Query(&ctx, request, &r).ok()) ++failed;
          latencies[c].push_back(
              std::chrono::duration<double, std::micro>(Clock::now() - start)
                  .count());
        }
      });
    }
    for (auto& t : clients) t.join();
    const double seconds =
        std::chrono::duration<double>(Clock::now() - t0).count();
    const double cpu = ProcessCpuSeconds(child) - cpu0;
    const long switches = Switches(child) - switches0;
    std::vector<double> all;
    for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    std::printf(
        "server=%s threads=%d concurrency=%d calls=%d failed=%d: %.0f calls/s, "
        "p50 %.1f us, p99 %.1f us; the server's CPU %.1f us and %.2f thread "
        "switches a call\n",
        mode.c_str(), threads, concurrency, calls, failed.load(),
        calls / seconds, all[all.size() / 2], all[all.size() * 99 / 100],
        cpu * 1e6 / calls, static_cast<double>(switches) / calls);
    result = failed.load() == 0 ? 0 : 1;
  }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  return result;
}

}  // namespace
}  // namespace raftsql::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return raftsql::bench::Run();
}
