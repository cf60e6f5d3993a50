// libFuzzer target: the decoders of what the log holds (a Command, its
// zero-copy view, a SettingChange, a UserChange, a CommandResult) take any
// bytes: an error, never a crash, and what decodes encodes back to bytes
// that decode to the same. Built and run by tests/fuzz_test.sh.
#include <cstdint>
#include <string_view>

#include "core/check.h"
#include "sm/command.h"
#include "sm/users.h"
#include "sm/write_budget.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace raftsql::sm;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Command> cmd = Command::Decode(bytes);
  CommandView view;
  const absl::Status viewed = view.Decode(bytes);
  CHECK(cmd.ok() == viewed.ok());  // One decoder, two results.
  if (cmd.ok()) {
    absl::StatusOr<Command> again = Command::Decode(cmd->Encode());
    CHECK(again.ok());
    CHECK(again->Encode() == cmd->Encode());  // (NaN != NaN: bytes.)
  }
  const absl::string_view abytes(bytes.data(), bytes.size());
  (void)Command::PeekRequestId(bytes);
  (void)SettingChange::PeekRequestId(abytes);
  if (auto setting = SettingChange::Decode(abytes); setting && setting->ok()) {
    WriteSettings limits;
    (void)ApplySetting((*setting)->name, (*setting)->value, &limits);
  }
  (void)UserChange::PeekRequestId(abytes);
  if (auto user = UserChange::Decode(abytes); user && user->ok()) {
    auto again = UserChange::Decode((*user)->Encode());
    CHECK(again.has_value() && again->ok());
    CHECK((*again)->user == (*user)->user);
  }
  (void)CommandResult::Decode(bytes);
  (void)TruncatedMessage(abytes);
  return 0;
}
