// The server side of DatabaseService.Backup: the file of one applied state
// (RaftServer::Backup), read by a thread of its own and written in 1 MiB
// chunks, at most two waiting for a slow client.
#ifndef RAFTSQL_SERVER_BACKUP_STREAM_H_
#define RAFTSQL_SERVER_BACKUP_STREAM_H_

#include <grpcpp/grpcpp.h>

#include "net/raftsql.grpc.pb.h"
#include "server/raft_server.h"

namespace raftsql::server {

grpc::ServerWriteReactor<v1::BackupChunk>* NewBackupStream(
    RaftServer* node, grpc::CallbackServerContext* ctx);

}  // namespace raftsql::server

#endif  // RAFTSQL_SERVER_BACKUP_STREAM_H_
