#!/usr/bin/env bash
# The shell's data commands against a 3-node TLS cluster: .import (CSV),
# .tables/.schema/.indexes, .mode and .headers, -c mixing SQL and
# dot-commands, .backup and .restore of the file, .dump and .restore of
# the text, .status and .remove.
set -euo pipefail
root="${TEST_SRCDIR:-$(pwd)}/raftsql"
dir="$(mktemp -d "${TEST_TMPDIR:-/tmp}/shell-data-XXXXXX")"
out="$dir/cluster.out"
"$root/tools/cluster" --nodes=3 --dir="$dir" \
  --server="$root/server/raftsql_server" >"$out" 2>&1 &
cluster_pid=$!
trap 'kill -9 $cluster_pid 2>/dev/null || true; pkill -9 -f "$dir" || true' EXIT
for _ in $(seq 1 150); do
  grep -q "Ctrl-C stops" "$out" && break
  sleep 0.1
done
grep -q "Ctrl-C stops" "$out" || { cat "$out"; echo "cluster did not start"; exit 1; }
nodes="$(sed -n 's/^shell:.*--nodes=\(.*\)$/\1/p' "$out")"
shell() { "$root/tools/shell" --certs_dir="$dir/certs" --nodes="$nodes" "$@"; }

printf 'id,name,city\n1,"Smith, J",Cork\n2,"say ""hi""",Galway\n3,Ann,"two\nlines"\n' \
  >"$dir/people.csv"
shell -c ".import $dir/people.csv people" | tee "$dir/a.txt"
grep -qx "imported 3 rows into people" "$dir/a.txt"
shell -c "CREATE INDEX people_city ON people(city);
SELECT count(*) AS n FROM people; .tables" | tee "$dir/b.txt"
grep -qx "3" "$dir/b.txt"
grep -qx "people" "$dir/b.txt"
shell -c ".indexes people" | grep -qx "people_city"
shell -c ".schema people" | grep -q 'CREATE TABLE "people" ("id" TEXT, "name" TEXT, "city" TEXT);'
shell -c ".mode csv
.headers off
SELECT name FROM people ORDER BY id" | tee "$dir/c.txt"
grep -q '^"Smith, J"' "$dir/c.txt"
grep -q '^"say ""hi"""' "$dir/c.txt"
shell -c ".mode json
SELECT id, name FROM people WHERE id = '1'" | tee "$dir/d.txt"
grep -qx '\[{"id":"1","name":"Smith, J"}\]' "$dir/d.txt"
shell -c ".mode line
SELECT id, city FROM people WHERE id = '2'" | tee "$dir/e.txt"
grep -qx "  id = 2" "$dir/e.txt"
grep -qx "city = Galway" "$dir/e.txt"
if shell -c ".mode tabular" >"$dir/f.txt"; then
  echo "an unknown mode was taken"; exit 1
fi

# The file: backed up, the table dropped, restored through Raft.
shell -c ".backup $dir/backup.sqlite" | tee "$dir/g.txt"
grep -q "^backed up log index [0-9]*: [0-9]* bytes" "$dir/g.txt"
[ "$(head -c 15 "$dir/backup.sqlite")" = "SQLite format 3" ]
[ ! -e "$dir/backup.sqlite.partial" ]
shell -c "DROP TABLE people"
shell -c ".restore $dir/backup.sqlite" | tee "$dir/h.txt"
grep -q "^restored .* (3 rows)" "$dir/h.txt"
shell -c "SELECT name FROM people WHERE city = 'Cork'" | grep -qx "Smith, J"
shell -c ".indexes people" | grep -qx "people_city"

# The text: dumped, dropped, restored.
shell -c ".dump $dir/dump.sql"
grep -q 'INSERT INTO "people" VALUES(.1.,.Smith, J.,.Cork.);' "$dir/dump.sql"
shell -c "DROP TABLE people"
shell -c ".restore $dir/dump.sql" | tee "$dir/i.txt"
grep -q "^restored" "$dir/i.txt"
shell -c "SELECT city FROM people WHERE id = '3'" | tee "$dir/j.txt"
grep -qx "two" "$dir/j.txt"

shell -c ".status" | tee "$dir/k.txt"
grep -q "^role: " "$dir/k.txt"
shell -c ".remove 3" | tee "$dir/l.txt"
grep -qx "node 3 removed" "$dir/l.txt"
shell -c "SELECT count(*) FROM people" | tee "$dir/m.txt"
grep -qx "3" "$dir/m.txt"

kill -INT "$cluster_pid"
wait "$cluster_pid" || true
echo PASS
