// Conversions between the core's Message and its wire form. A message that
// does not decode (garbage from the network) is an error, never a crash.
#ifndef RAFTSQL_NET_CONVERT_H_
#define RAFTSQL_NET_CONVERT_H_

#include "absl/status/statusor.h"
#include "core/types.h"
#include "net/raftsql.pb.h"

namespace raftsql::net {

// The rvalue forms move entries' and snapshot chunks' bytes instead of
// copying them (the transport's and the peer service's: a 1 MiB chunk
// copied on each side cost a joining follower a sixth of its CPU).
void ToProto(const core::Message& m, v1::RaftMessage* out);
void ToProto(core::Message&& m, v1::RaftMessage* out);
// InvalidArgument for an unknown message or entry type, or a local-only
// message type (those never travel).
absl::StatusOr<core::Message> FromProto(const v1::RaftMessage& p);
absl::StatusOr<core::Message> FromProto(v1::RaftMessage&& p);

}  // namespace raftsql::net

#endif  // RAFTSQL_NET_CONVERT_H_
