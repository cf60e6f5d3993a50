#include "server/query_stream.h"

#include "server/convert.h"
#include "server/stream_writer.h"

namespace raftsql::server {

grpc::ServerWriteReactor<v1::QueryResponse>* NewQueryStream(
    RaftServer* node, grpc::CallbackServerContext* ctx,
    const v1::QueryRequest& request, sm::ReadLimits limits) {
  auto* writer = new StreamWriter<v1::QueryResponse>(ctx, kQueryPagesQueued);
  node->QueryStream(
      FromProto(request.statement()), request.consistency() == v1::LINEARIZABLE,
      std::move(limits),
      [writer](sm::QueryResult page) {
        v1::QueryResponse message;
        ToProto(page, &message);
        return writer->Push(std::move(message));
      },
      [writer](absl::Status s) { writer->End(s); });
  return writer;
}

}  // namespace raftsql::server
