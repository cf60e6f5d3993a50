// FileDeleter: deletes files on a thread of its own. Unlinking a large file
// frees its extents inside the call (about 700 ms for a 4.3 GB image on
// this machine's ext4), which the Raft loop must never wait for: images
// for followers, partial received images and a database replaced by a
// received one all go through here.
//
// Thread-safe.
#ifndef RAFTSQL_SM_FILE_DELETER_H_
#define RAFTSQL_SM_FILE_DELETER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace raftsql::sm {

class FileDeleter {
 public:
  // Files waiting; a Delete beyond them waits for room (each file is one
  // unlink: the wait is bounded).
  static constexpr size_t kMaxQueued = 64;

  FileDeleter();
  // Deletes what is queued, then stops.
  ~FileDeleter();
  FileDeleter(const FileDeleter&) = delete;
  FileDeleter& operator=(const FileDeleter&) = delete;

  void Delete(std::string path);
  // Deletes each file beside `path` named `<path's name>.<rest>` for which
  // `pick(rest)` holds (what an earlier run left).
  void DeleteBeside(const std::string& path,
                    const std::function<bool(const std::string& rest)>& pick);
  // Renames `path` out of the way (so that a new file may take its name at
  // once), then deletes it. A crash in between leaves the renamed file:
  // IsTrash says so, for a sweep at the next start.
  void Discard(const std::string& path);
  // A name in `path`'s directory, unused so far, that IsTrash recognizes.
  std::string TrashName(const std::string& path);
  static bool IsTrash(const std::string& file_name);
  // Returns once every file queued so far is gone (tests).
  void Wait();

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;  // Guarded by mu_.
  bool busy_ = false;              // Guarded by mu_: one being deleted.
  bool stop_ = false;              // Guarded by mu_.
  uint64_t trash_names_ = 0;       // Guarded by mu_.
  std::thread thread_;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_FILE_DELETER_H_
