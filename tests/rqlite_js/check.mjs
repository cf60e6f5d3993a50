// rqlite-js (rqlite's JavaScript client) against raftsql: each check prints
// ok or FAIL; the exit status is non-zero if one failed. tests/rqlite_js/run.sh
// installs the client and starts a node for it.
import pkg from 'rqlite-js';
const {DataApiClient, StatusApiClient, BackupApiClient} = pkg;
const host = process.argv[2];
const data = new DataApiClient(host);
const out = [];
const check = (what, ok, detail) => {
  out.push(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? ': ' + detail : ''}`);
  if (!ok) process.exitCode = 1;
};
let r = await data.execute(
    'CREATE TABLE foo (id integer not null primary key, name text, age integer)');
check(
    'execute CREATE', !r.hasError(),
    r.hasError() ? String(r.getFirstError()) : '');
r = await data.execute([
  ['INSERT INTO foo(name, age) VALUES(?, ?)', 'fiona', 20],
  ['INSERT INTO foo(name, age) VALUES(:name, :age)', {name: 'declan', age: 25}]
]);
check(
    'execute parameterized (positional, named)',
    !r.hasError() && r.get(1).getLastInsertId() === 2, r.toString());
r = await data.execute(
    [
      'INSERT INTO foo(name) VALUES(\'a\')',
      'INSERT INTO foo(id, name) VALUES(1, \'dup\')'
    ],
    {transaction: true});
check(
    'execute transaction with a failing statement', r.hasError(), r.toString());
r = await data.query('SELECT id, name, age FROM foo ORDER BY id');
const rows = r.toArray();
check(
    'query (GET)',
    !r.hasError() && rows.length === 2 && rows[0].name === 'fiona' &&
        rows[1].age === 25,
    JSON.stringify(rows));
for (const level of ['none', 'weak', 'strong']) {
  r = await data.query('SELECT count(*) AS n FROM foo', {level});
  check(
      `query level=${level}`, !r.hasError() && r.get(0).get('n') === 2,
      r.toString());
}
r = await data.query([['SELECT name FROM foo WHERE id = ?', 1]]);
check('query parameterized', !r.hasError(), r.toString());
r = await data.query('SELECT * FROM nosuch');
check(
    'query error in its place',
    r.hasError() && String(r.getFirstError()).includes('no such table'),
    String(r.getFirstError()));
const status = new StatusApiClient(host);
const s = await status.status();
check(
    'status', s.status === 200 && s.body.store.raft.state === 'Leader',
    s.body.store.raft.state);
const backup = new BackupApiClient(host);
const stream = await backup.backup();
const chunks = [];
for await (const c of stream) chunks.push(c);
const file = Buffer.concat(chunks);
check(
    'backup (a stream)', file.subarray(0, 15).toString() === 'SQLite format 3',
    `${file.length} bytes`);
const loadStream = await backup.load(
    'CREATE TABLE bar (v);\nINSERT INTO bar VALUES (1);\nINSERT INTO bar VALUES (2);\n');
let loadBody = '';
for await (const c of loadStream) loadBody += c;
check('load (SQL text)', loadBody.includes('"loaded"'), loadBody);
r = await data.query('SELECT sum(v) AS s FROM bar');
check(
    'loaded rows read back', !r.hasError() && r.get(0).get('s') === 3,
    r.toString());
console.log(out.join('\n'));
