#include "edge/hub_session.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "edge/hub_proto.h"

namespace raftsql::edge {

HubSession::HubSession(HubSessionOptions options, std::string device)
    : options_(std::move(options)), device_(std::move(device)) {}

void HubSession::OnMessage(const v1::EdgeUp& up, int64_t now_ms,
                           HubEffects* fx) {
  if (ending_) return;
  if (up.kind_case() == v1::EdgeUp::kHello) {
    if (said_hello_) {
      return EndWith(absl::FailedPreconditionError("Hello twice"), fx);
    }
    return OnHello(up.hello(), now_ms, fx);
  }
  if (!said_hello_) {
    return EndWith(absl::FailedPreconditionError("say Hello first"), fx);
  }
  if (!welcomed_) {
    return EndWith(absl::FailedPreconditionError("wait for the Welcome"), fx);
  }
  switch (up.kind_case()) {
    case v1::EdgeUp::kUpload:
      return OnUpload(up.upload(), now_ms, fx);
    case v1::EdgeUp::kOutcome: {
      absl::StatusOr<CommandStatus> result = OutcomeOf(up.outcome());
      if (!result.ok()) return EndWith(result.status(), fx);
      Write(Kind::kOutcome,
            OutcomeCommand(device_, up.outcome().id(), *result,
                           up.outcome().detail(), now_ms),
            fx);
      return;
    }
    case v1::EdgeUp::kTwin:
      if (absl::Status v = ValidateTwinReport(up.twin()); !v.ok()) {
        return EndWith(v, fx);
      }
      Write(Kind::kTwin,
            ReportTwinCommand(device_, up.twin().reported_json(),
                              up.twin().desired_version(), now_ms),
            fx);
      return;
    default:
      return EndWith(absl::InvalidArgumentError("an empty message"), fx);
  }
}

void HubSession::OnHello(const v1::Hello& hello, int64_t now_ms,
                         HubEffects* fx) {
  if (absl::Status v = ValidateName("incarnation", hello.incarnation(),
                                    kMaxIncarnationBytes);
      !v.ok()) {
    return EndWith(v, fx);
  }
  said_hello_ = true;
  incarnation_ = hello.incarnation();
  if (options_.schema_known()) return SayHello(now_ms, fx);
  Write(Kind::kSchema, SchemaCommand(), fx, /*bounded=*/false);
}

void HubSession::SayHello(int64_t now_ms, HubEffects* fx) {
  Write(
      Kind::kHello,
      HelloCommand(device_, incarnation_, options_.name, options_.node, now_ms),
      fx, /*bounded=*/false);
}

void HubSession::OnUpload(const v1::Upload& upload, int64_t now_ms,
                          HubEffects* fx) {
  absl::StatusOr<Upload> up = UploadOf(upload);
  if (!up.ok()) return Send(AckOf(upload.batch(), up.status()), fx);
  const uint64_t op =
      Write(Kind::kUpload, UploadCommand(device_, stream_, *up, now_ms), fx);
  pending_[op].batch = upload.batch();
}

void HubSession::OnWritten(uint64_t op,
                           const absl::StatusOr<sm::CommandResult>& r,
                           int64_t now_ms, HubEffects* fx) {
  auto it = pending_.find(op);
  CHECK(it != pending_.end());
  const Pending p = it->second;
  pending_.erase(it);
  switch (p.kind) {
    case Kind::kSchema:
      if (absl::Status f = FailureOf(r); !f.ok()) return EndWith(f, fx);
      if (!ending_) Write(Kind::kUpgrade, UpgradeCommand(), fx, false);
      return;
    case Kind::kUpgrade: {
      absl::Status f = UpgradeStatus(r);
      if (!f.ok()) return EndWith(f, fx);
      fx->schema_made = true;
      if (!ending_) SayHello(now_ms, fx);
      return;
    }
    case Kind::kHello: {
      absl::StatusOr<StreamAck> acked = AckOfResult(r);
      if (!acked.ok()) return EndWith(acked.status(), fx);
      stream_ = acked->stream;
      welcomed_ = true;
      if (ending_) return;
      v1::EdgeDown down;
      down.mutable_welcome()->set_acked_sequence(acked->acked);
      down.mutable_welcome()->set_node(options_.node);
      Send(std::move(down), fx);
      fx->welcomed = true;
      return Poke(true, true, fx);
    }
    case Kind::kUpload: {
      absl::StatusOr<StreamAck> acked = AckOfResult(r);
      return Send(
          AckOf(p.batch, acked.ok() ? absl::StatusOr<uint64_t>(acked->acked)
                                    : acked.status()),
          fx);
    }
    case Kind::kOutcome:
      return;  // A lost outcome is repaired by redelivery.
    case Kind::kTwin:
      if (absl::Status f = FailureOf(r); !f.ok()) {
        EndWith(absl::UnavailableError(absl::StrCat(
                    "the twin report was not stored: ", f.message())),
                fx);
      }
      return;
    case Kind::kDeliver:
      for (v1::EdgeDown& down : MarkedCommands(r)) Send(std::move(down), fx);
      if (!r.ok() && absl::IsResourceExhausted(r.status())) {
        return LookDone(fx);  // The hub is busy: the next look goes on.
      }
      return DeliverNext(now_ms, fx);
    case Kind::kLook:
    case Kind::kDesired:
      break;
  }
  CHECK(false);  // A read answered as a write.
}

void HubSession::OnRead(uint64_t op, const absl::StatusOr<sm::QueryResult>& q,
                        int64_t now_ms, HubEffects* fx) {
  auto it = pending_.find(op);
  CHECK(it != pending_.end());
  const Kind kind = it->second.kind;
  pending_.erase(it);
  if (kind == Kind::kLook) return OnLook(q, now_ms, fx);
  CHECK(kind == Kind::kDesired);
  std::optional<v1::EdgeDown> down = DesiredOf(q);
  if (!down.has_value()) return;
  const uint64_t version = down->desired().version();
  if (version <= desired_sent_) return;
  desired_sent_ = version;
  Send(std::move(*down), fx);
}

size_t HubSession::uploads_in_flight() const {
  return static_cast<size_t>(std::count_if(
      pending_.begin(), pending_.end(),
      [](const auto& p) { return p.second.kind == Kind::kUpload; }));
}

void HubSession::Poke(bool commands, bool twin, HubEffects* fx) {
  if (!Live()) return;
  if (commands) LookForCommands(fx);
  if (twin) Read(Kind::kDesired, DesiredQuery(device_), fx);
}

void HubSession::LookForCommands(HubEffects* fx) {
  if (looking_) {
    look_again_ = true;
    return;
  }
  looking_ = true;
  Read(Kind::kLook, OpenCommandsQuery(device_, kMaxOpenCommandsPerLook), fx);
}

void HubSession::OnLook(const absl::StatusOr<sm::QueryResult>& q,
                        int64_t now_ms, HubEffects* fx) {
  due_.clear();
  next_due_ = 0;
  if (q.ok()) {
    for (HubCommand& c : CommandsOf(*q)) {
      if (DueForDelivery(c, now_ms, options_.command_lock_ms)) {
        due_.push_back(std::move(c.id));
      }
    }
  }
  DeliverNext(now_ms, fx);
}

void HubSession::DeliverNext(int64_t now_ms, HubEffects* fx) {
  if (next_due_ >= due_.size() || !Live()) return LookDone(fx);
  Write(Kind::kDeliver,
        DeliverCommand(device_, incarnation_, due_[next_due_++], now_ms,
                       options_.command_lock_ms),
        fx);
}

void HubSession::LookDone(HubEffects* fx) {
  due_.clear();
  looking_ = false;
  if (look_again_) {
    look_again_ = false;
    Poke(true, false, fx);
  }
}

void HubSession::End(absl::Status status) {
  if (ending_) return;
  ending_ = true;
  end_status_ = std::move(status);
}

void HubSession::EndWith(absl::Status status, HubEffects* fx) {
  if (ending_) return;
  End(status);
  fx->end = std::move(status);
}

std::optional<sm::Command> HubSession::Goodbye(int64_t now_ms) const {
  if (!welcomed_) return std::nullopt;
  return GoodbyeCommand(device_, options_.name, now_ms);
}

void HubSession::Send(v1::EdgeDown down, HubEffects* fx) {
  if (!ending_) fx->sends.push_back(std::move(down));
}

uint64_t HubSession::Write(Kind kind, sm::Command c, HubEffects* fx,
                           bool bounded) {
  const uint64_t op = next_op_++;
  pending_[op] = Pending{kind};
  fx->writes.push_back(HubEffects::Write{op, std::move(c), bounded});
  return op;
}

void HubSession::Read(Kind kind, sm::Statement q, HubEffects* fx) {
  const uint64_t op = next_op_++;
  pending_[op] = Pending{kind};
  fx->reads.push_back(HubEffects::Read{op, std::move(q)});
}

}  // namespace raftsql::edge
