// One way to read flags for every binary (issue 16): Abseil flags, so
// --help, --helpfull and --flagfile=FILE (one --flag=value a line) work
// everywhere. Names may be spelled with - or _ (--sql-disk is --sql_disk);
// with an environment prefix, PREFIX_<FLAG> sets --<flag> first and the
// command line wins (RAFTSQL_DATA_DIR=... for --data_dir).
#ifndef RAFTSQL_TOOLS_FLAGS_H_
#define RAFTSQL_TOOLS_FLAGS_H_

#include <string>
#include <vector>

namespace raftsql::tools {

// Sets the usage message, parses the flags (exiting on an unknown or
// malformed one, and after --help) and returns the arguments that are not
// flags, program name first. `env_prefix` empty: no environment.
std::vector<std::string> ParseFlags(int argc, char** argv,
                                    const std::string& usage,
                                    const std::string& env_prefix = "");

// The flag as --name=value if its value is not its default, else "".
std::string FlagIfNotDefault(const std::string& name);

}  // namespace raftsql::tools

#endif  // RAFTSQL_TOOLS_FLAGS_H_
