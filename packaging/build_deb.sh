#!/usr/bin/env bash
# build_deb.sh OUT.deb VERSION SERVER SHELL CERTS AGENT SERVICE FLAGS POSTINST
# Packs the binaries (as built: ./bazelw build -c opt //packaging:deb for
# a release) with the systemd unit, the example configuration and man
# pages made from each binary's --help, into a Debian package whose
# Depends are the packages of the shared libraries the binaries use.
set -euo pipefail
out=$1 version=$2 server=$3 shell=$4 certs=$5 agent=$6 service=$7 flags=$8 postinst=$9
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" \
  "$root/etc/raftsql" "$root/usr/share/man/man1" \
  "$root/usr/share/doc/raftsql"
install -m 0755 "$server" "$root/usr/bin/raftsql_server"
install -m 0755 "$shell" "$root/usr/bin/raftsql_shell"
install -m 0755 "$certs" "$root/usr/bin/raftsql_certs"
install -m 0755 "$agent" "$root/usr/bin/raftsql_edge_agent"
install -m 0644 "$service" "$root/lib/systemd/system/raftsql.service"
install -m 0644 "$flags" "$root/etc/raftsql/raftsql.flags"
install -m 0755 "$postinst" "$root/DEBIAN/postinst"
echo /etc/raftsql/raftsql.flags >"$root/DEBIAN/conffiles"
# Man pages: each binary's --help, as it prints it.
for bin in raftsql_server raftsql_shell raftsql_certs raftsql_edge_agent; do
  {
    echo ".TH ${bin^^} 1 \"\" \"raftsql $version\" \"raftsql\""
    echo ".SH NAME"
    echo "$bin \\- part of raftsql, a Raft-replicated SQLite"
    echo ".SH DESCRIPTION"
    echo ".nf"
    "$root/usr/bin/$bin" --help 2>&1 | sed 's/\\/\\\\/g; s/^\./\\\&./' || true
    echo ".fi"
  } | gzip -9n >"$root/usr/share/man/man1/$bin.1.gz"
done
printf 'raftsql: Raft-replicated SQLite, built from its repository.\n' \
  >"$root/usr/share/doc/raftsql/README"
# Every library a binary loads must come from the system (a fastbuild test
# binary would load bazel's own .so files: not a package).
if for bin in "$root"/usr/bin/*; do ldd "$bin"; done |
  grep -E "not found|/\.cache/bazel|_solib_"; then
  echo "build_deb.sh: a binary loads libraries outside the system" >&2
  exit 1
fi
# Depends: the packages that ship the shared libraries the binaries load.
depends=$(for bin in "$root"/usr/bin/*; do ldd "$bin"; done |
  awk '/=> \//{print $3}' | sort -u |
  while read -r lib; do dpkg -S "$(readlink -f "$lib")" 2>/dev/null ||
    dpkg -S "$lib" 2>/dev/null || true; done |
  cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')
size=$(du -sk "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: raftsql
Version: $version
Architecture: amd64
Maintainer: raftsql developers <raftsql@localhost>
Installed-Size: $size
Depends: adduser, $depends
Section: database
Priority: optional
Description: Raft-replicated SQLite with an rqlite-compatible HTTP API
 raftsql_server is one node of a cluster that replicates SQLite through
 Raft; raftsql_shell is its SQL shell, raftsql_certs makes its
 certificates and raftsql_edge_agent is the edge devices' agent.
CONTROL
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
