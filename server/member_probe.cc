#include "server/member_probe.h"

#include <chrono>
#include <future>
#include <utility>

#include "net/client.h"

namespace raftsql::server {

std::vector<MemberProbe> ProbeMembers(const std::vector<Member>& members,
                                      const net::Tls& tls, int timeout_ms) {
  std::vector<std::future<MemberProbe>> asked;
  asked.reserve(members.size());
  for (const Member& m : members) {
    const std::string endpoint =
        m.client_address.empty() ? m.address : m.client_address;
    asked.push_back(
        std::async(std::launch::async, [id = m.id, endpoint, tls, timeout_ms] {
          net::ClientOptions o;
          o.tls = tls;
          o.timeout_ms = timeout_ms;
          o.attempts = 1;
          net::Client client({endpoint}, o);
          MemberProbe p;
          p.id = id;
          const auto start = std::chrono::steady_clock::now();
          absl::StatusOr<v1::StatusResponse> s = client.Status(endpoint);
          p.seconds = std::chrono::duration<double>(
                          std::chrono::steady_clock::now() - start)
                          .count();
          if (s.ok()) {
            p.reachable = true;
            p.http_address = s->http_address();
          } else {
            p.error = std::string(s.status().message());
          }
          return p;
        }));
  }
  std::vector<MemberProbe> out;
  out.reserve(asked.size());
  for (std::future<MemberProbe>& f : asked) out.push_back(f.get());
  return out;
}

}  // namespace raftsql::server
