// Fault injection: the per-seed fault plan (swarm testing: each seed enables
// a random subset of fault kinds at random intensities) and the chaos events
// that act on it — partitions (isolation, split, asymmetric), swizzle-clogging,
// crashes with restarts, process pauses and code-level fault points.
#include <algorithm>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/check.h"
#include "core/prng.h"
#include "sim/simulation.h"
#include "sim/simulation_internal.h"

namespace raftsql::sim {

FaultPlan DrawFaultPlan(uint64_t seed, int nodes, double intensity) {
  core::Prng p(seed * 0x2545f4914f6cdd1dull + 17);
  FaultPlan plan;
  uint64_t shape_mix = seed ^ 0x5a9e5u;
  const uint64_t shape = core::SplitMix64(shape_mix);
  constexpr uint64_t kMessageBytes[] = {300, 1024, 4096, 16 * 1024};
  constexpr size_t kWindows[] = {1, 2, 4, 16};
  if (shape & 1) plan.max_message_bytes = kMessageBytes[(shape >> 1) % 4];
  if (shape & 8) plan.max_inflight_messages = kWindows[(shape >> 4) % 4];
  uint64_t membership_mix = seed ^ 0x3e3be5u;
  plan.any_membership_change = (core::SplitMix64(membership_mix) & 1) != 0;
  plan.clock_drift.assign(nodes, 0.0);
  plan.disk_slowdown.assign(nodes, 1);
  const Time latency_max[] = {500, 2 * kMillisecond, 10 * kMillisecond};
  plan.network.latency_max = latency_max[p.Uniform(3)];
  if (intensity <= 0) return plan;
  auto on = [&](double chance) { return p.Chance(chance); };
  auto level = [&](double max) {
    return max * intensity * (0.2 + 0.8 * (p.Next() >> 11) * 0x1.0p-53);
  };
  if (on(0.7)) plan.network.drop_probability = level(0.10);
  if (on(0.5)) plan.network.duplicate_probability = level(0.05);
  if (on(0.5)) plan.network.long_delay_probability = level(0.02);
  if (on(0.3)) plan.disk.fsync_failure_probability = level(0.002);
  plan.disk.partial_write_probability = 0.5;
  plan.disk.corrupt_sector_probability = 0.3;
  plan.chaos_interval = static_cast<Time>(
      static_cast<double>(p.Range(100, 800) * kMillisecond) / intensity);
  plan.partition_weight = on(0.7) ? static_cast<int>(p.Range(1, 4)) : 0;
  plan.clog_weight = on(0.4) ? static_cast<int>(p.Range(1, 2)) : 0;
  plan.crash_weight = on(0.7) ? static_cast<int>(p.Range(1, 4)) : 0;
  plan.pause_weight = on(0.5) ? static_cast<int>(p.Range(1, 2)) : 0;
  plan.buggify_weight = on(0.5) ? static_cast<int>(p.Range(1, 2)) : 0;
  plan.membership_weight = on(0.4) && nodes > 3 ? 1 : 0;
  if (on(0.5)) {
    for (double& d : plan.clock_drift) d = (level(0.4) - 0.2 * intensity);
  }
  if (on(0.3)) plan.disk_slowdown[p.Uniform(nodes)] = p.Range(5, 20);
  plan.buggify_campaign = on(0.5);
  plan.buggify_transfer = on(0.5);
  plan.buggify_unreachable = on(0.5);
  if (on(0.4)) plan.crash_mid_write_probability = level(0.004);
  // Drawn last: the draws above, and so every older seed's plan, stay.
  if (on(0.5)) plan.crash_mid_swap_probability = 0.3;
  if (on(0.3)) plan.isolate_leader_weight = static_cast<int>(p.Range(1, 3));
  if (on(0.3)) plan.crash_after_vote_probability = level(0.3);
  // Its own mix, so that the draws above stay: a quarter of the seeds hold
  // 0.1% to 1% of the messages across elections.
  uint64_t hold_mix = seed ^ 0x401d5u;
  const uint64_t hold = core::SplitMix64(hold_mix);
  if ((hold & 3) == 0) {
    plan.network.hold_probability =
        0.001 * static_cast<double>(1 + (hold >> 2) % 10);
    // Half of those (5 nodes or more) also return leaders: answers held
    // from a leader's first term can then reach it in a later one.
    if (nodes >= 5 && ((hold >> 8) & 1) == 1) {
      plan.leader_return_weight = static_cast<int>(1 + (hold >> 9) % 2);
    }
  }
  return plan;
}

std::string FaultPlan::Describe() const {
  std::vector<std::string> parts;
  parts.push_back(
      absl::StrFormat("latency<=%.1fms", network.latency_max / 1000.0));
  if (network.drop_probability > 0) {
    parts.push_back(
        absl::StrFormat("drop=%.1f%%", network.drop_probability * 100));
  }
  if (network.duplicate_probability > 0) {
    parts.push_back(
        absl::StrFormat("dup=%.1f%%", network.duplicate_probability * 100));
  }
  if (network.hold_probability > 0) {
    parts.push_back(
        absl::StrFormat("hold=%.1f%%", network.hold_probability * 100));
  }
  if (network.long_delay_probability > 0) {
    parts.push_back(absl::StrFormat("long-delay=%.1f%%",
                                    network.long_delay_probability * 100));
  }
  if (max_message_bytes > 0) {
    parts.push_back(absl::StrFormat("messages<=%dB", max_message_bytes));
  }
  if (max_inflight_messages > 0) {
    parts.push_back(absl::StrFormat("window=%d", max_inflight_messages));
  }
  if (crash_mid_write_probability > 0) {
    parts.push_back(absl::StrFormat("crash-mid-write=%.2f%%",
                                    crash_mid_write_probability * 100));
  }
  if (crash_mid_swap_probability > 0) {
    parts.push_back(absl::StrFormat("crash-mid-swap=%.0f%%",
                                    crash_mid_swap_probability * 100));
  }
  if (crash_after_vote_probability > 0) {
    parts.push_back(absl::StrFormat("crash-after-vote=%.0f%%",
                                    crash_after_vote_probability * 100));
  }
  if (disk.fsync_failure_probability > 0) {
    parts.push_back(absl::StrFormat("fsync-fail=%.2f%%",
                                    disk.fsync_failure_probability * 100));
  }
  if (chaos_interval > 0) {
    parts.push_back(absl::StrFormat(
        "chaos every ~%dms (partition:%d clog:%d crash:%d pause:%d "
        "buggify:%d membership:%d isolate-leader:%d%s)",
        chaos_interval / kMillisecond, partition_weight, clog_weight,
        crash_weight, pause_weight, buggify_weight, membership_weight,
        isolate_leader_weight,
        leader_return_weight > 0
            ? absl::StrCat(" leader-return:", leader_return_weight)
            : ""));
  }
  const double max_drift = *std::max_element(
      clock_drift.begin(), clock_drift.end(),
      [](double a, double b) { return std::abs(a) < std::abs(b); });
  if (max_drift != 0) {
    parts.push_back(
        absl::StrFormat("drift<=%.0f%%", std::abs(max_drift) * 100));
  }
  const uint64_t slow =
      *std::max_element(disk_slowdown.begin(), disk_slowdown.end());
  if (slow > 1) parts.push_back(absl::StrFormat("slow-disk=%dx", slow));
  return absl::StrJoin(parts, " ");
}

void Simulation::ScheduleChaos() {
  if (plan_.chaos_interval == 0) return;
  queue_.After(rng_.Uniform(2 * plan_.chaos_interval) + 1, 0xc4a05,
               [this] { Chaos(); });
}

void Simulation::Chaos() {
  if (!fault_phase_) return;
  // Edge faults join the cluster's (only when there are edges: the other
  // runs draw what they always drew).
  if (edges_ != nullptr && rng_.Chance(0.4)) {
    edges_->Chaos();
    ScheduleChaos();
    return;
  }
  const int total = plan_.partition_weight + plan_.clog_weight +
                    plan_.crash_weight + plan_.pause_weight +
                    plan_.buggify_weight + plan_.membership_weight +
                    plan_.isolate_leader_weight + plan_.leader_return_weight;
  if (total > 0) {
    int pick = static_cast<int>(rng_.Uniform(total));
    if ((pick -= plan_.partition_weight) < 0) {
      Partition();
    } else if ((pick -= plan_.clog_weight) < 0) {
      Clog();
    } else if ((pick -= plan_.crash_weight) < 0) {
      Slot& s = PickCrashVictim();
      if (s.up) {
        ++result_.faults["crash"];
        CrashNode(s, "(chaos)");
        RestartLater(s, rng_.Range(100, 3000) * kMillisecond, 0x5e57a47);
      }
    } else if ((pick -= plan_.pause_weight) < 0) {
      Slot& s = *slots_[rng_.Uniform(slots_.size())];
      if (s.up) {
        ++result_.faults["pause"];
        const Time d = rng_.Range(50, 1500) * kMillisecond;
        s.paused_until = queue_.now() + d;
        Trace(absl::StrFormat("n%d pauses for %dms", s.id, d / kMillisecond));
      }
    } else if ((pick -= plan_.buggify_weight) < 0) {
      Buggify();
    } else if ((pick -= plan_.membership_weight) < 0) {
      ChangeMembership();
    } else if ((pick -= plan_.isolate_leader_weight) < 0) {
      IsolateLeader();
    } else {
      LeaderReturns();
    }
  }
  ScheduleChaos();
}

Simulation::Slot* Simulation::CurrentLeader() const {
  Slot* best = nullptr;
  for (const auto& s : slots_) {
    if (!s->up) continue;
    const core::Raft& r = s->node->raw().raft();
    if (r.state() != core::StateType::kLeader) continue;
    if (best == nullptr || r.term() > best->node->raw().raft().term()) {
      best = s.get();
    }
  }
  return best;
}

std::vector<uint64_t> Simulation::Members() const {
  const Slot* leader = CurrentLeader();
  if (leader == nullptr) return {};
  const core::ConfState cs =
      leader->node->raw().raft().tracker().GetConfState();
  std::vector<uint64_t> members = cs.voters;
  members.insert(members.end(), cs.learners.begin(), cs.learners.end());
  return members;
}

void Simulation::ChangeMembership() {
  // Single-server changes, one at a time: promote a caught-up learner, else
  // bring a removed node back as a learner, else remove a voter (keeping at
  // least three). The leader may remove itself.
  Slot* leader = CurrentLeader();
  if (leader == nullptr) return;
  const core::ConfState cs =
      leader->node->raw().raft().tracker().GetConfState();
  core::ConfChange cc;
  const char* what = "";
  std::vector<uint64_t> removed;
  for (const auto& s : slots_) {
    const bool member =
        std::count(cs.voters.begin(), cs.voters.end(), s->id) > 0 ||
        std::count(cs.learners.begin(), cs.learners.end(), s->id) > 0;
    if (!member) removed.push_back(s->id);
  }
  // Seeds with any_membership_change pick any change that applies,
  // learners' removal too, so that shapes like 3 voters and 2 learners
  // occur and last; the others promote a learner first.
  if (plan_.any_membership_change) {
    using Type = core::ConfChange::Type;
    std::vector<std::pair<core::ConfChange, const char*>> options;
    for (uint64_t id : cs.learners) {
      options.push_back({{Type::kAddVoter, id, ""}, "promote learner"});
      options.push_back({{Type::kRemoveNode, id, ""}, "remove learner"});
    }
    for (uint64_t id : removed) {
      options.push_back({{Type::kAddLearner, id, ""}, "add learner"});
    }
    if (cs.voters.size() > 3) {
      for (uint64_t id : cs.voters) {
        options.push_back({{Type::kRemoveNode, id, ""}, "remove voter"});
      }
    }
    if (options.empty()) return;
    std::tie(cc, what) = options[rng_.Uniform(options.size())];
  } else if (!cs.learners.empty()) {
    cc =
        core::ConfChange{core::ConfChange::Type::kAddVoter, cs.learners[0], ""};
    what = "promote learner";
  } else if (!removed.empty()) {
    cc = core::ConfChange{core::ConfChange::Type::kAddLearner,
                          removed[rng_.Uniform(removed.size())], ""};
    what = "add learner";
  } else if (cs.voters.size() > 3) {
    cc = core::ConfChange{core::ConfChange::Type::kRemoveNode,
                          cs.voters[rng_.Uniform(cs.voters.size())], ""};
    what = "remove voter";
  } else {
    return;
  }
  const absl::Status st = leader->node->ProposeConfChange(cc);
  AfterNodeEvent(*leader);
  Trace(absl::StrFormat(
      "membership: n%d proposes to %s n%d%s", leader->id, what, cc.node_id,
      st.ok() ? "" : absl::StrCat(" (refused: ", st.message(), ")")));
  if (st.ok()) ++result_.faults[absl::StrCat("membership: ", what)];
}

Simulation::Slot& Simulation::PickCrashVictim() {
  // Most crashes hit a node in the middle of a log write: the window in which
  // the persist-before-send rule and torn writes matter.
  std::vector<Slot*> writing;
  for (auto& s : slots_) {
    if (s->up && s->node->persisting()) writing.push_back(s.get());
  }
  if (!writing.empty() && rng_.Chance(0.7)) {
    return *writing[rng_.Uniform(writing.size())];
  }
  return *slots_[rng_.Uniform(slots_.size())];
}

void Simulation::Partition() {
  const uint64_t n = slots_.size();
  std::vector<std::pair<uint64_t, uint64_t>> links;
  std::string what;
  const uint64_t kind = rng_.Uniform(3);
  if (kind == 0) {
    const uint64_t victim = 1 + rng_.Uniform(n);
    for (uint64_t i = 1; i <= n; ++i) {
      if (i == victim) continue;
      links.push_back({victim, i});
      links.push_back({i, victim});
    }
    what = absl::StrCat("isolate n", victim);
    ++result_.faults["partition: isolate"];
  } else if (kind == 1) {
    // Split into a random side and the rest.
    std::vector<uint64_t> side;
    for (uint64_t i = 1; i <= n; ++i) {
      if (rng_.Chance(0.5)) side.push_back(i);
    }
    for (uint64_t a : side) {
      for (uint64_t b = 1; b <= n; ++b) {
        if (std::find(side.begin(), side.end(), b) != side.end()) continue;
        links.push_back({a, b});
        links.push_back({b, a});
      }
    }
    what = absl::StrCat("split {", absl::StrJoin(side, ","), "} from the rest");
    ++result_.faults["partition: split"];
  } else {
    const uint64_t from = 1 + rng_.Uniform(n);
    for (uint64_t i = 1; i <= n; ++i) {
      if (i != from && rng_.Chance(0.6)) links.push_back({from, i});
    }
    what = absl::StrCat("one-way: n", from, " cannot send to ", links.size(),
                        " peers");
    ++result_.faults["partition: one-way"];
  }
  for (auto [a, b] : links) network_->Cut(a, b);
  const Time duration = rng_.Range(100, 3000) * kMillisecond;
  Trace(
      absl::StrFormat("partition: %s for %dms", what, duration / kMillisecond));
  queue_.After(duration, 0x4ea1, [this, links] {
    for (auto [a, b] : links) network_->Restore(a, b);
  });
}

void Simulation::IsolateLeader() {
  Slot* leader = CurrentLeader();
  if (leader == nullptr) return;
  std::vector<std::pair<uint64_t, uint64_t>> links;
  for (uint64_t i = 1; i <= slots_.size(); ++i) {
    if (i == leader->id) continue;
    links.push_back({leader->id, i});
    links.push_back({i, leader->id});
  }
  for (auto [a, b] : links) network_->Cut(a, b);
  // Long enough for the others to elect a leader and commit: the old one
  // serves its clients meanwhile, until it finds it lost its quorum.
  const Time duration = rng_.Range(500, 3000) * kMillisecond;
  ++result_.faults["partition: isolate leader"];
  // Half the time its timer stalls too: it does not find out that it lost
  // its quorum (CheckQuorum) before the others elect a new leader, and
  // keeps answering its clients as the leader it thinks it is.
  const bool stall = rng_.Chance(0.5);
  if (stall) {
    leader->ticks_stalled_until = queue_.now() + duration;
    ++result_.faults["partition: isolate leader, its timer stalled"];
  }
  Trace(absl::StrFormat("partition: isolate leader n%d for %dms%s", leader->id,
                        duration / kMillisecond,
                        stall ? ", its timer stalled" : ""));
  queue_.After(duration, 0x4ea2, [this, links] {
    for (auto [a, b] : links) network_->Restore(a, b);
  });
}

void Simulation::LeaderReturns() {
  Slot* leader = CurrentLeader();
  // One at a time: a second one's cuts would heal the first's.
  if (leader == nullptr || slots_.size() < 5 ||
      queue_.now() < leader_return_until_) {
    return;
  }
  LeaderReturn r;
  r.leader = leader->id;
  r.follower = 1 + rng_.Uniform(slots_.size() - 1);
  if (r.follower >= r.leader) ++r.follower;
  const Time split = rng_.Range(500, 2000) * kMillisecond;
  r.deaf = rng_.Range(1000, 4000) * kMillisecond;
  r.isolate_after = rng_.Range(200, 800) * kMillisecond;
  r.isolated = rng_.Range(500, 2000) * kMillisecond;
  leader_return_until_ =
      queue_.now() + split + std::max(r.deaf, r.isolate_after + r.isolated);
  // 1. The leader and the follower apart from the rest, which elect and
  // commit. The follower's answers to the leader are held, then released
  // while it is deaf: they reach the leader in whatever term it then has,
  // before anyone has changed the follower's log.
  for (uint64_t i = 1; i <= slots_.size(); ++i) {
    if (i == r.leader || i == r.follower) continue;
    for (uint64_t side : {r.leader, r.follower}) {
      r.apart.push_back({side, i});
      r.apart.push_back({i, side});
    }
  }
  for (auto [a, b] : r.apart) network_->Cut(a, b);
  network_->HoldLink(r.follower, r.leader, queue_.now() + split, r.deaf);
  ++result_.faults["leader returns"];
  Trace(absl::StrFormat(
      "leader returns: n%d and n%d apart for %dms, then n%d deaf for %dms",
      r.leader, r.follower, split / kMillisecond, r.follower,
      r.deaf / kMillisecond));
  queue_.After(split, 0x4ea3, [this, r] { LeaderRejoins(r); });
}

void Simulation::LeaderRejoins(const LeaderReturn& r) {
  for (auto [a, b] : r.apart) network_->Restore(a, b);
  if (!fault_phase_) return;  // Healed for the liveness phase.
  // 2. The old leader is back with the rest; the follower hears no one (it
  // may still speak).
  Links deafened;
  for (uint64_t i = 1; i <= slots_.size(); ++i) {
    if (i != r.follower) deafened.push_back({i, r.follower});
  }
  CutFor(deafened, r.deaf);
  // 3. The new leader is isolated in turn: the old one may lead again.
  queue_.After(r.isolate_after, 0x4ea5, [this, r] {
    Slot* now = CurrentLeader();
    if (!fault_phase_ || now == nullptr || now->id == r.leader) return;
    Links links;
    for (uint64_t i = 1; i <= slots_.size(); ++i) {
      if (i == now->id) continue;
      links.push_back({now->id, i});
      links.push_back({i, now->id});
    }
    CutFor(links, r.isolated);
    Trace(absl::StrFormat("leader returns: the new leader n%d isolated",
                          now->id));
  });
}

void Simulation::CutFor(const Links& links, Time duration) {
  for (auto [a, b] : links) network_->Cut(a, b);
  queue_.After(duration, 0x4ea6, [this, links] {
    for (auto [a, b] : links) network_->Restore(a, b);
  });
}

void Simulation::Clog() {
  // Swizzle-clog: cut links one at a time, then heal them in random order.
  const uint64_t n = slots_.size();
  std::vector<std::pair<uint64_t, uint64_t>> links;
  for (uint64_t a = 1; a <= n; ++a) {
    for (uint64_t b = 1; b <= n; ++b) {
      if (a != b && rng_.Chance(0.4)) links.push_back({a, b});
    }
  }
  const Time step = rng_.Range(20, 200) * kMillisecond;
  for (size_t i = 0; i < links.size(); ++i) {
    const auto link = links[i];
    queue_.After(step * i, 0xc1061, [this, link] {
      if (fault_phase_) network_->Cut(link.first, link.second);
    });
  }
  for (size_t i = links.size(); i > 1; --i) {
    std::swap(links[i - 1], links[rng_.Uniform(i)]);
  }
  for (size_t i = 0; i < links.size(); ++i) {
    const auto link = links[i];
    queue_.After(step * (links.size() + i), 0xc1062,
                 [this, link] { network_->Restore(link.first, link.second); });
  }
  ++result_.faults["clog"];
  Trace(absl::StrFormat("clog: %d links cut one by one every %dms",
                        links.size(), step / kMillisecond));
}

void Simulation::Buggify() {
  Slot& s = *slots_[rng_.Uniform(slots_.size())];
  if (!s.up) return;
  const uint64_t peer = 1 + rng_.Uniform(slots_.size());
  const bool leads = s.node->raw().raft().state() == core::StateType::kLeader;
  switch (rng_.Uniform(3)) {
    case 0:
      if (!plan_.buggify_campaign) return;
      ++result_.faults["buggify: campaign"];
      Trace(absl::StrFormat("buggify: n%d campaigns out of turn", s.id));
      s.node->Campaign();
      break;
    case 1:
      if (!plan_.buggify_transfer || !leads || peer == s.id) return;
      ++result_.faults["buggify: transfer"];
      Trace(
          absl::StrFormat("buggify: n%d hands leadership to n%d", s.id, peer));
      s.node->TransferLeadership(peer);
      break;
    default:
      if (!plan_.buggify_unreachable || !leads || peer == s.id) return;
      ++result_.faults["buggify: unreachable"];
      s.node->ReportUnreachable(peer);
      break;
  }
  AfterNodeEvent(s);
}

void Simulation::HealAll() {
  heal_time_ = queue_.now();
  network_->HealAll();
  NetworkFaults calm = plan_.network;
  calm.drop_probability = 0;
  calm.duplicate_probability = 0;
  calm.long_delay_probability = 0;
  calm.hold_probability = 0;
  network_->SetFaults(calm);
  for (auto& s : slots_) {
    s->paused_until = 0;
    s->disk->set_fsync_failure_probability(0);
    if (!s->up) {
      RestartLater(*s, rng_.Uniform(100 * kMillisecond), 0x5e57a48);
    }
  }
  Trace("all faults healed: network whole, every node restarting or up");
  if (edges_ != nullptr) edges_->Heal();
  // Every client now writes until one write succeeds (liveness).
  for (auto& c : clients_) StartClient(*c);
}

}  // namespace raftsql::sim
