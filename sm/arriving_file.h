// ArrivingFile: a received image while it is being stored (issue 14), as
// the check that trails the transfer reads it: a read of bytes not stored
// yet waits for them. The writer says how much of the stream it stored;
// the layout (image_layout.h) says which of the file's bytes that covers.
//
// Thread-safe.
#ifndef RAFTSQL_SM_ARRIVING_FILE_H_
#define RAFTSQL_SM_ARRIVING_FILE_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "sm/image_layout.h"

namespace raftsql::sm {

class ArrivingFile {
 public:
  explicit ArrivingFile(ImageLayout layout) : layout_(layout) {}
  ArrivingFile(const ArrivingFile&) = delete;
  ArrivingFile& operator=(const ArrivingFile&) = delete;

  // The file's size once every byte is stored.
  uint64_t size() const { return layout_.size(); }
  // The first `stream_bytes` of the stream are stored.
  void Stored(uint64_t stream_bytes);
  // Ends every wait, now and later: the transfer was dropped.
  void Cancel();
  // Waits until the file's [at, at + bytes) is stored (the part within
  // size()); false if cancelled first.
  bool WaitFor(uint64_t at, uint64_t bytes);
  // Whether it is stored, without waiting.
  bool IsStored(uint64_t at, uint64_t bytes) const;

 private:
  // The stream's bytes that cover [at, at + bytes); 0 if none are needed.
  uint64_t Needed(uint64_t at, uint64_t bytes) const;

  const ImageLayout layout_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t stored_ = 0;     // Guarded by mu_.
  bool cancelled_ = false;  // Guarded by mu_.
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_ARRIVING_FILE_H_
