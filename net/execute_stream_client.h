// ExecuteStreamClient: a client's end of DatabaseService.ExecuteStream,
// pipelined writes to one node (net/raftsql.proto). Send queues a request
// and returns at once; requests queued while a message is being written go
// together in the next one. Each answer arrives through `on_answer`, on a
// gRPC thread, with the tag it was sent with.
//
// Thread-safety: Send and Close may be called from any thread, including
// from on_answer. Every request that Send accepted is answered exactly once:
// by the server, or with the stream's error if it ends first.
#ifndef RAFTSQL_NET_EXECUTE_STREAM_CLIENT_H_
#define RAFTSQL_NET_EXECUTE_STREAM_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_set>

#include "absl/status/statusor.h"
#include "net/raftsql.grpc.pb.h"

namespace raftsql::net {

class ExecuteStreamClient final
    : public grpc::ClientBidiReactor<v1::ExecuteStreamRequest,
                                     v1::ExecuteStreamResponse> {
 public:
  // An error answer keeps the server's code and message; a leader address
  // (FAILED_PRECONDITION from a node that does not forward) is in the
  // message.
  using OnAnswer =
      std::function<void(uint64_t tag, absl::StatusOr<v1::ExecuteResponse>)>;

  // Opens the stream on `stub` (which must outlive this object), with
  // `authorization` as the call's credentials if given (net::Client's
  // BasicAuthorization; a client certificate travels with the channel).
  ExecuteStreamClient(v1::DatabaseService::Stub* stub, OnAnswer on_answer,
                      const std::string& authorization = "");
  // Closes and waits (see Close).
  ~ExecuteStreamClient() override;

  // False if the stream has ended or is closing: the request was not sent
  // and will not be answered. A tag must not be in flight twice.
  bool Send(uint64_t tag, v1::ExecuteRequest request);
  // Closes the sending side and waits until every request has been
  // answered and the stream has ended; its final status.
  absl::Status Close();

  // gRPC's reactions.
  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  // Starts the write of what is pending, or the half-close once closing and
  // nothing is left to write. Called with mu_ held in `l`; releases it.
  void WriteNext(std::unique_lock<std::mutex>& l);
  // Removes the hold once no write can start any more. Releases `l`.
  void MaybeRelease(std::unique_lock<std::mutex>& l);

  const OnAnswer on_answer_;
  grpc::ClientContext ctx_;
  v1::ExecuteStreamResponse in_;  // The read in progress.
  std::mutex mu_;
  std::condition_variable done_cv_;
  v1::ExecuteStreamRequest out_;      // The write in progress.
  v1::ExecuteStreamRequest pending_;  // Requests for the next write.
  std::unordered_set<uint64_t> unanswered_;
  bool writing_ = false;  // Invariant: out_ is gRPC's while set.
  bool closing_ = false;
  bool half_closed_ = false;
  bool failed_ = false;       // A write failed: the stream is ending.
  bool reads_ended_ = false;  // The server finished (or the stream broke).
  bool hold_released_ = false;
  bool done_ = false;
  grpc::Status status_;
};

}  // namespace raftsql::net

#endif  // RAFTSQL_NET_EXECUTE_STREAM_CLIENT_H_
