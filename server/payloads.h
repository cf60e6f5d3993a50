// The payloads a node's error statuses carry, so that the gRPC layer
// (server/convert.h) adds the trailers clients follow.
#ifndef RAFTSQL_SERVER_PAYLOADS_H_
#define RAFTSQL_SERVER_PAYLOADS_H_

namespace raftsql::server {

inline constexpr char kLeaderPayload[] = "raftsql/leader";
inline constexpr char kNoLeaderPayload[] = "raftsql/no-leader";

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_PAYLOADS_H_
