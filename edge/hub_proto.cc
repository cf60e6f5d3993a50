#include "edge/hub_proto.h"

#include <utility>

#include "sm/command.h"

namespace raftsql::edge {
namespace {

namespace pb = ::raftsql::edge::v1;

bool Retriable(absl::StatusCode c) {
  return c == absl::StatusCode::kUnavailable ||
         c == absl::StatusCode::kResourceExhausted ||
         c == absl::StatusCode::kAborted ||
         c == absl::StatusCode::kDeadlineExceeded;
}

}  // namespace

absl::StatusOr<Upload> UploadOf(const pb::Upload& u) {
  absl::Status valid =
      ValidateReadingCount(static_cast<size_t>(u.readings_size()));
  if (!valid.ok()) return valid;
  Upload out;
  out.readings.reserve(static_cast<size_t>(u.readings_size()));
  for (const pb::Reading& r : u.readings()) {
    out.readings.push_back(Reading{r.sensor(), r.value(), r.unit(),
                                   r.device_time_ms(), r.sequence()});
  }
  out.oldest_sequence = u.oldest_sequence();
  out.backlog = u.backlog();
  out.dropped = u.dropped();
  if (valid = ValidateUpload(out); !valid.ok()) return valid;
  return out;
}

pb::EdgeDown AckOf(uint64_t batch, const absl::StatusOr<uint64_t>& acked) {
  pb::EdgeDown down;
  pb::Ack* ack = down.mutable_ack();
  ack->set_batch(batch);
  if (acked.ok()) {
    ack->set_acked_sequence(*acked);
    return down;
  }
  ack->set_code(static_cast<int32_t>(acked.status().code()));
  ack->set_error(sm::TruncatedMessage(acked.status().message()));
  if (Retriable(acked.status().code())) ack->set_retry_after_ms(kRetryAfterMs);
  return down;
}

absl::Status FailureOf(const absl::StatusOr<sm::CommandResult>& r) {
  return r.ok() ? r->FirstFailure() : r.status();
}

absl::StatusOr<StreamAck> AckOfResult(
    const absl::StatusOr<sm::CommandResult>& r) {
  if (absl::Status failed = FailureOf(r); !failed.ok()) return failed;
  return AckedOf(*r);
}

absl::StatusOr<CommandStatus> OutcomeOf(const pb::CommandOutcome& o) {
  CommandStatus result;
  switch (o.result()) {
    case pb::CommandOutcome::DONE:
      result = CommandStatus::kDone;
      break;
    case pb::CommandOutcome::REJECTED:
      result = CommandStatus::kRejected;
      break;
    case pb::CommandOutcome::FAILED:
      result = CommandStatus::kFailed;
      break;
    default:
      return absl::InvalidArgumentError("an outcome needs a result");
  }
  if (absl::Status v = ValidateName("command id", o.id(), kMaxCommandIdBytes);
      !v.ok()) {
    return v;
  }
  if (o.detail().size() > kMaxDetailBytes) {
    return absl::InvalidArgumentError("detail beyond 1 KiB");
  }
  return result;
}

absl::Status ValidateTwinReport(const pb::TwinReport& t) {
  return ValidateJsonObject("reported_json", t.reported_json(),
                            kMaxTwinJsonBytes);
}

std::vector<pb::EdgeDown> MarkedCommands(
    const absl::StatusOr<sm::CommandResult>& r) {
  std::vector<pb::EdgeDown> out;
  if (!FailureOf(r).ok() || r->statements.empty()) return out;
  sm::QueryResult rows;
  rows.rows = r->statements.back().rows;
  for (const HubCommand& c : CommandsOf(rows)) {
    pb::EdgeDown down;
    pb::Command* cmd = down.mutable_command();
    cmd->set_id(c.id);
    cmd->set_name(c.name);
    cmd->set_params_json(c.params_json);
    cmd->set_created_ms(c.created_ms);
    cmd->set_expires_ms(c.expires_ms);
    cmd->set_attempt(c.attempts);
    out.push_back(std::move(down));
  }
  return out;
}

std::optional<pb::EdgeDown> DesiredOf(
    const absl::StatusOr<sm::QueryResult>& q) {
  if (!q.ok() || q->rows.size() != 1 || q->rows[0].size() != 2) {
    return std::nullopt;
  }
  pb::EdgeDown down;
  down.mutable_desired()->set_desired_json(q->rows[0][0].bytes);
  down.mutable_desired()->set_version(
      static_cast<uint64_t>(q->rows[0][1].integer));
  return down;
}

}  // namespace raftsql::edge
