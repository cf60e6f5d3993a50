#include "sm/file_deleter.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace raftsql::sm {

FileDeleter::FileDeleter() : thread_([this] { Run(); }) {}

FileDeleter::~FileDeleter() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void FileDeleter::Delete(std::string path) {
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return queue_.size() < kMaxQueued; });
    queue_.push_back(std::move(path));
  }
  cv_.notify_all();
}

namespace {
constexpr char kTrashMark[] = ".deleting-";
}  // namespace

std::string FileDeleter::TrashName(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  return absl::StrCat(path, kTrashMark, getpid(), "-", ++trash_names_);
}

bool FileDeleter::IsTrash(const std::string& file_name) {
  return file_name.find(kTrashMark) != std::string::npos;
}

void FileDeleter::Discard(const std::string& path) {
  const std::string trash = TrashName(path);
  if (std::rename(path.c_str(), trash.c_str()) != 0) {
    std::remove(path.c_str());  // Missing, or cannot move: delete here.
    return;
  }
  Delete(trash);
}

void FileDeleter::DeleteBeside(
    const std::string& path,
    const std::function<bool(const std::string& rest)>& pick) {
  const std::filesystem::path file(path);
  const std::string prefix = file.filename().string() + ".";
  const std::filesystem::path dir =
      file.has_parent_path() ? file.parent_path() : ".";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && pick(name.substr(prefix.size()))) {
      Delete(entry.path().string());
    }
  }
}

void FileDeleter::Wait() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [this] { return queue_.empty() && !busy_; });
}

void FileDeleter::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    cv_.wait(l, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // Stopping, and nothing is left.
    const std::string path = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    l.unlock();
    std::remove(path.c_str());  // A missing file is fine.
    l.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace raftsql::sm
