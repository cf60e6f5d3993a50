// Tests: a fresh directory for database files, removed at the end of the
// test.
#ifndef RAFTSQL_SM_TEMP_DIR_H_
#define RAFTSQL_SM_TEMP_DIR_H_

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace raftsql::sm {

class TempDir {
 public:
  TempDir() {
    char dir[] = "/tmp/raftsql-sm-XXXXXX";
    if (mkdtemp(dir) == nullptr) std::abort();
    path_ = dir;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace raftsql::sm

#endif  // RAFTSQL_SM_TEMP_DIR_H_
