#!/usr/bin/env bash
# The Debian package installs (dpkg -i into a scratch root: this machine's
# own dpkg database and /etc are left alone), holds what it says, and the
# node starts from the systemd unit's command line (run directly: no
# systemd here) with the example configuration adapted to this test,
# serves, takes RAFTSQL_* from the environment, and stops on SIGTERM.
set -euo pipefail
root="${TEST_SRCDIR:-$(pwd)}/raftsql"
deb="$(ls "$root"/packaging/raftsql_*_amd64.deb)"
inst="$(mktemp -d "${TEST_TMPDIR:-/tmp}/deb-XXXXXX")"
mkdir -p "$inst/var/lib/dpkg/info" "$inst/var/lib/dpkg/updates"
touch "$inst/var/lib/dpkg/status"
# --force-script-chrootless: the maintainer script runs here, sees
# DPKG_ROOT and leaves the host alone.
dpkg --root="$inst" --force-depends --force-not-root \
  --force-script-chrootless --log=/dev/null -i "$deb"
dpkg --root="$inst" -s raftsql | grep -q "^Status: install ok installed"
dpkg-deb -f "$deb" Depends | grep -q "libsqlite3-0"
for f in usr/bin/raftsql_server usr/bin/raftsql_shell usr/bin/raftsql_certs \
  usr/bin/raftsql_edge_agent lib/systemd/system/raftsql.service \
  etc/raftsql/raftsql.flags usr/share/man/man1/raftsql_server.1.gz; do
  [ -e "$inst/$f" ] || { echo "missing $f"; exit 1; }
done
zcat "$inst/usr/share/man/man1/raftsql_server.1.gz" | grep -q -- "--flagfile"
dpkg-deb -f "$deb" Package | grep -qx raftsql
grep -qx "/etc/raftsql/raftsql.flags" <(dpkg-deb -I "$deb" conffiles)

# The unit's command line, its paths moved into the scratch root.
exec_start="$(sed -n 's/^ExecStart=//p' "$inst/lib/systemd/system/raftsql.service")"
exec_start="${exec_start//\/usr\/bin\//$inst/usr/bin/}"
exec_start="${exec_start//\/etc\/raftsql\//$inst/etc/raftsql/}"
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
grpc="$(free_port)" http="$(free_port)"
# The example configuration, for this machine: free ports, a scratch data
# directory, plaintext (this test makes no certificates).
sed -i -e "s|^--listen=.*|--listen=127.0.0.1:$grpc|" \
  -e "s|^--peers=.*|--peers=1=127.0.0.1:$grpc|" \
  -e "s|^--http_listen=.*|--http_listen=127.0.0.1:$http|" \
  -e "s|^--data_dir=.*|--data_dir=$inst/var/lib/raftsql|" \
  -e "s|^--certs_dir=.*|--insecure|" "$inst/etc/raftsql/raftsql.flags"
# RAFTSQL_SLOW_REQUEST_MS (not in the file): every request is slow.
RAFTSQL_SLOW_REQUEST_MS=1 $exec_start >"$inst/node.log" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$http/readyz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$http/readyz" | grep -q "leader ok"
curl -sf -XPOST "http://127.0.0.1:$http/db/execute" \
  -d '["CREATE TABLE t (v)", "INSERT INTO t VALUES (42)"]' | grep -q '"rows_affected":1'
curl -sf -G "http://127.0.0.1:$http/db/query" --data-urlencode 'q=SELECT v FROM t' |
  grep -q '"values":\[\[42\]\]'
"$inst/usr/bin/raftsql_shell" --insecure --nodes="127.0.0.1:$grpc" -c "SELECT v FROM t" |
  grep -qx 42
kill -TERM "$pid"
wait "$pid"
# The configuration's JSON log, and the environment's slow requests.
grep -q '"event":"slow_request"' "$inst/node.log" || { cat "$inst/node.log"; exit 1; }
grep -q '"msg":"node 1 stopped"' "$inst/node.log"
echo PASS
