#include "tools/flags.h"

#include <unistd.h>

#include <algorithm>

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace raftsql::tools {

std::vector<std::string> ParseFlags(int argc, char** argv,
                                    const std::string& usage,
                                    const std::string& env_prefix) {
  absl::SetProgramUsageMessage(usage);
  std::vector<std::string> args(argv, argv + 1);
  if (!env_prefix.empty()) {
    const std::string prefix = env_prefix + "_";
    for (char** e = environ; *e != nullptr; ++e) {
      const absl::string_view var(*e);
      const size_t eq = var.find('=');
      if (!absl::StartsWith(var, prefix) || eq == absl::string_view::npos) {
        continue;
      }
      const std::string name =
          absl::AsciiStrToLower(var.substr(prefix.size(), eq - prefix.size()));
      // A variable that names no flag is left alone.
      if (absl::FindCommandLineFlag(name) == nullptr) continue;
      args.push_back(absl::StrCat("--", name, "=", var.substr(eq + 1)));
    }
  }
  args.insert(args.end(), argv + 1, argv + argc);
  // Everything after a bare "--" is an argument, even if it looks like a
  // flag.
  bool flags_end = false;
  for (std::string& a : args) {
    if (a == "--") flags_end = true;
    if (flags_end || a.rfind("--", 0) != 0) continue;
    const size_t end = std::min(a.find('='), a.size());
    std::replace(a.begin() + 2, a.begin() + static_cast<ptrdiff_t>(end), '-',
                 '_');
  }
  std::vector<char*> argp;
  for (std::string& a : args) argp.push_back(a.data());
  const std::vector<char*> rest =
      absl::ParseCommandLine(static_cast<int>(argp.size()), argp.data());
  return std::vector<std::string>(rest.begin(), rest.end());
}

std::string FlagIfNotDefault(const std::string& name) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  if (flag == nullptr || flag->CurrentValue() == flag->DefaultValue()) {
    return "";
  }
  return absl::StrCat("--", name, "=", flag->CurrentValue());
}

}  // namespace raftsql::tools
