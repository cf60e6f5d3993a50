// The simulated edges' faults, the end of their run, and the checkers that
// compare what the edges produced and ran with what the hub holds.
#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "edge/hub_sql.h"
#include "sim/edge_world.h"
#include "sim/edge_world_internal.h"

namespace raftsql::sim {

void EdgeWorld::Chaos() {
  if (healed_ || options_.fault_intensity <= 0) return;
  Edge& e = *edges_[rng_.Uniform(edges_.size())];
  const uint64_t dice = rng_.Uniform(100);
  if (dice < 35) {
    ++hub_->Fault("edge crash");
    Crash(e, /*wipe=*/false);
  } else if (dice < 45) {
    ++hub_->Fault("edge disk wiped");
    Crash(e, /*wipe=*/true);
  } else if (dice < 80) {
    // The edge loses its link to one node for a while.
    const uint64_t node = 1 + rng_.Uniform(hub_->nodes());
    const std::pair<int, uint64_t> link{e.index, node};
    if (cut_.insert(link).second) {
      ++hub_->Fault("edge-hub partition");
      hub_->Trace(absl::StrFormat("%s cut from n%d", e.device, node));
      queue_->After(kMillisecond * rng_.Range(200, 5000), 0xedc47,
                    [this, link] { cut_.erase(link); });
    }
  } else if (e.up && e.session != 0) {
    ++hub_->Fault("edge session broken");
    EndSession(e, "(chaos) its stream broke");
  }
}

void EdgeWorld::Heal() {
  healed_ = true;
  heal_time_ = queue_->now();
  cut_.clear();
  // One command per device with no fault left: each must run exactly once.
  for (auto& e : edges_) {
    const uint64_t n = ++commands_issued_;
    edge::HubCommand c;
    c.id = absl::StrCat("c", n);
    c.device = e->device;
    c.name = "set";
    c.params_json = absl::StrCat("{\"cmd\":\"", c.id, "\",\"v\":", n, "}");
    c.expires_ms = static_cast<int64_t>(queue_->now() / kMillisecond) + 60'000;
    c.max_attempts = 3;
    issued_[c.id] = c;
    if (must_complete_.insert(c.id).second) Issue(n, 0);
  }
  for (auto& e : edges_) {
    Edge* ep = e.get();
    if (!e->up) {
      queue_->After(rng_.Uniform(100 * kMillisecond), 0xedb1, [this, ep] {
        if (!ep->up) Boot(*ep);
      });
    }
  }
}

bool EdgeWorld::Settled(uint64_t node) {
  if (settled_) return true;
  for (const auto& e : edges_) {
    if (!e->up || !e->welcomed || !e->core->Drained() ||
        e->core->stats().acked != e->store->last_sequence()) {
      unsettled_ = absl::StrFormat(
          "%s is %s, %s, backlog %d, acked %d of %d", e->device,
          e->up ? "up" : "down", e->welcomed ? "welcomed" : "not welcomed",
          e->up ? e->store->backlog() : 0, e->up ? e->core->stats().acked : 0,
          e->up ? e->store->last_sequence() : 0);
      return false;
    }
  }
  if (operator_writes_ > 0) {
    unsettled_ = absl::StrCat(operator_writes_, " operator writes in flight");
    return false;
  }
  if (!must_complete_.empty()) {
    unsettled_ = absl::StrCat(must_complete_.size(),
                              " commands issued after healing not in yet");
    return false;
  }
  // The rows (a name, a description) that keep the run from settling.
  auto pending = [&](const char* what, const char* sql) {
    absl::StatusOr<sm::QueryResult> q = hub_->Read(node, sm::Statement{sql});
    if (!q.ok()) {
      unsettled_ = absl::StrCat(what, ": ", q.status().message());
      return true;
    }
    if (q->rows.empty()) return false;
    unsettled_ = absl::StrCat(q->rows.size(), " ", what, ":");
    for (const auto& row : q->rows) {
      absl::StrAppend(&unsettled_, " ", row[0].bytes, " (", row[1].bytes, ")");
    }
    return true;
  };
  if (pending("commands open",
              "SELECT id, device || ' ' || status || ' ' || attempts || '/' "
              "|| max_attempts || ', expires ' || expires_ms || 'ms' FROM "
              "edge_commands WHERE status IN ('queued', 'delivered')") ||
      pending("twins not reported",
              "SELECT device, 'desired v' || desired_version || ', reported "
              "v' || reported_desired_version FROM edge_twins WHERE "
              "reported_desired_version <> desired_version")) {
    return false;
  }
  settled_ = true;
  hub_->Trace("edges: every reading acknowledged, every command ended");
  return true;
}

void EdgeWorld::Check(uint64_t node) {
  auto read = [&](const char* sql) {
    absl::StatusOr<sm::QueryResult> q = hub_->Read(node, sm::Statement{sql});
    if (!q.ok()) {
      hub_->Violation(
          absl::StrCat("edges: cannot read the hub: ", q.status().message()));
      return sm::QueryResult{};
    }
    return *q;
  };

  // Readings: the hub holds each one the edge stored, once, as stored.
  std::set<std::pair<std::string, uint64_t>> stored;
  for (const auto& row :
       read("SELECT incarnation, seq, value, device_time_ms FROM "
            "edge_readings_by_device")
           .rows) {
    const std::pair<std::string, uint64_t> key{
        row[0].bytes, static_cast<uint64_t>(row[1].integer)};
    if (!stored.insert(key).second) {
      return hub_->Violation(absl::StrFormat(
          "edges: reading %s/%d is stored twice", key.first, key.second));
    }
    auto it = produced_.find(key);
    if (it == produced_.end()) {
      return hub_->Violation(absl::StrFormat(
          "edges: the hub holds reading %s/%d, which the edge never made "
          "durable",
          key.first, key.second));
    }
    if (it->second.value != row[2].real ||
        it->second.device_time_ms != row[3].integer) {
      return hub_->Violation(absl::StrFormat(
          "edges: reading %s/%d is %g at %d in the hub, %g at %d on the edge",
          key.first, key.second, row[2].real, row[3].integer, it->second.value,
          it->second.device_time_ms));
    }
  }
  // incarnation -> its ack plus what the device's newer streams hold:
  // retention deletes what lies max_per_device below that (which only
  // grows).
  std::map<std::string, int64_t> kept_from;
  for (const auto& row :
       read("SELECT s.incarnation, s.acked + (SELECT coalesce(sum(n.acked), "
            "0) FROM edge_streams n WHERE n.device = s.device AND n.stream > "
            "s.stream) FROM edge_streams s")
           .rows) {
    kept_from[row[0].bytes] = row[1].integer;
  }
  uint64_t lost_with_disk = 0;
  uint64_t dropped = 0;
  uint64_t retained = 0;
  for (const auto& [key, p] : produced_) {
    if (stored.count(key) > 0) continue;
    if (wiped_.count(key.first) > 0) {
      ++lost_with_disk;
      continue;
    }
    if (dropped_.count(key) > 0) {
      ++dropped;
      continue;
    }
    if (options_.readings_max_per_device > 0 &&
        static_cast<int64_t>(key.second) <=
            kept_from[key.first] - options_.readings_max_per_device) {
      ++retained;
      continue;
    }
    return hub_->Violation(absl::StrFormat(
        "edges: reading %s/%d was stored on its edge and never reached the "
        "hub",
        key.first, key.second));
  }
  if (lost_with_disk > 0) {
    hub_->Fault("edge readings lost with a wiped disk") += lost_with_disk;
  }
  if (dropped > 0) hub_->Fault("edge readings dropped for room") += dropped;
  if (retained > 0) {
    hub_->Fault("edge readings deleted by retention") += retained;
  }
  hub_->Fault("edge readings stored") += stored.size();

  // Commands: at most once, never expired, exactly once if reachable.
  const int64_t reach =
      static_cast<int64_t>(heal_time_ / kMillisecond) + options_.reach_ms;
  std::set<std::string> known;
  for (const auto& row :
       read("SELECT id, status, expires_ms, name, detail FROM edge_commands")
           .rows) {
    const std::string& id = row[0].bytes;
    const std::string& status = row[1].bytes;
    const int64_t expires = row[2].integer;
    known.insert(id);
    auto ran = runs_.find(id);
    const std::vector<Run> none;
    const std::vector<Run>& runs = ran == runs_.end() ? none : ran->second;
    if (runs.size() > 1) {
      return hub_->Violation(absl::StrFormat(
          "edges: command %s ran %d times (at %dms and %dms)", id, runs.size(),
          runs[0].at / kMillisecond, runs[1].at / kMillisecond));
    }
    for (const Run& r : runs) {
      if (static_cast<int64_t>(r.at / kMillisecond) >= expires) {
        return hub_->Violation(absl::StrFormat(
            "edges: command %s ran at %dms, after its expiry at %dms", id,
            r.at / kMillisecond, expires));
      }
    }
    const bool answered =
        status == "done" || status == "failed" || status == "rejected";
    // Rejected may be unrun (expired on arrival); done and failed ran.
    if ((status == "done" || status == "failed") && runs.size() != 1) {
      return hub_->Violation(absl::StrFormat(
          "edges: command %s is %s but ran %d times", id, status, runs.size()));
    }
    // Ended for a documented reason before it could expire: out of
    // attempts, or its store gone ("... gone (<incarnation>): ...").
    const std::string& detail = row[4].bytes;
    const bool to_gone_store = detail.rfind("delivered to a store", 0) == 0;
    const bool gave_up =
        to_gone_store || detail.rfind("no answer after", 0) == 0;
    // A store wiped just before the faults healed may have been sent a
    // command by its stale session: that command ends as its store did.
    const size_t open = detail.find('(');
    const bool store_gone =
        to_gone_store && open != std::string::npos &&
        wiped_.count(detail.substr(open + 1, detail.find(')') - open - 1)) > 0;
    if (to_gone_store && !store_gone) {
      return hub_->Violation(absl::StrFormat(
          "edges: command %s ended \"%s\", but that store was not lost", id,
          detail));
    }
    if (must_run_.count(id) > 0 && !answered && !store_gone) {
      return hub_->Violation(absl::StrFormat(
          "edges: command %s, issued after the faults healed, ended %s (%s)",
          id, status, detail));
    }
    if (expires >= reach && !answered && !gave_up) {
      return hub_->Violation(absl::StrFormat(
          "edges: command %s (expiring at %dms, the faults healed at %dms) "
          "ended %s",
          id, expires, heal_time_ / kMillisecond, status));
    }
    ++hub_->Fault(absl::StrCat("edge commands ", status));
  }
  for (const auto& [id, runs] : runs_) {
    if (!runs.empty() && known.count(id) == 0) {
      return hub_->Violation(
          absl::StrCat("edges: command ", id, " ran but was never issued"));
    }
  }

  // Devices: each shows connected through the session it is in (devices
  // are "dev-<index>").
  for (const auto& row :
       read("SELECT substr(device, 5), connected, session FROM edge_devices")
           .rows) {
    const Edge& e = *edges_[std::stoul(row[0].bytes) - 1];
    const Session* s = Live(e.session);
    if (s == nullptr || row[1].integer != 1 ||
        row[2].bytes != s->core->name()) {
      return hub_->Violation(absl::StrFormat(
          "edges: %s shows connected=%d through session %s, but is in %s",
          e.device, row[1].integer, row[2].bytes,
          s == nullptr ? "none" : s->core->name()));
    }
  }

  // Twins: what each device reports reflects what is desired.
  const sm::QueryResult delta =
      read("SELECT device, key, desired, reported FROM edge_twin_delta");
  if (!delta.rows.empty()) {
    const auto& row = delta.rows[0];
    return hub_->Violation(absl::StrFormat(
        "edges: %s reports %s = %s, desired %s", row[0].bytes, row[1].bytes,
        row[3].DebugString(), row[2].DebugString()));
  }
}

}  // namespace raftsql::sim
