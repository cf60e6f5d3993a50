#include "server/backup_stream.h"

#include <memory>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/stream_writer.h"

namespace raftsql::server {

namespace {

constexpr uint64_t kChunkBytes = uint64_t{1} << 20;
constexpr size_t kChunksQueued = 2;

// The thread's work: the image's chunks, in order, into `writer`.
void Send(std::shared_ptr<sm::ImageSource> source,
          StreamWriter<v1::BackupChunk>* writer) {
  source->Wait();  // Its WAL frames are known.
  absl::StatusOr<core::ImageInfo> info = source->Latest();
  if (!info.ok()) {
    return writer->End(absl::UnavailableError(
        absl::StrCat("the backup could not start: ", source->last_error())));
  }
  const uint64_t index = info->metadata.index;
  uint64_t offset = 0;
  do {
    const uint64_t n = std::min(kChunkBytes, info->size - offset);
    absl::StatusOr<std::string> data = source->Read(index, offset, n);
    if (!data.ok()) return writer->End(data.status());
    v1::BackupChunk chunk;
    if (offset == 0) {
      chunk.set_applied_index(index);
      chunk.set_size(info->size);
    }
    *chunk.mutable_data() = *std::move(data);
    offset += n;
    // CANCELLED once the client went: stop reading.
    if (!writer->Push(std::move(chunk)).ok())
      return writer->End(absl::OkStatus());
  } while (offset < info->size);
  writer->End(absl::OkStatus());
}

}  // namespace

grpc::ServerWriteReactor<v1::BackupChunk>* NewBackupStream(
    RaftServer* node, grpc::CallbackServerContext* ctx) {
  auto* writer = new StreamWriter<v1::BackupChunk>(ctx, kChunksQueued);
  node->Backup(
      [writer](absl::StatusOr<std::shared_ptr<sm::ImageSource>> source) {
        if (!source.ok()) return writer->End(source.status());
        // Off the Raft loop (this runs on it): at most kMaxBackups threads.
        std::thread(Send, *std::move(source), writer).detach();
      });
  return writer;
}

}  // namespace raftsql::server
