--TEST--
SQL: php/bin/rsession schema prints the DDL; --apply creates the tables (idempotent); other stores have none
--FILE--
<?php
require __DIR__ . '/setup.inc';
$tool = dirname(__DIR__, 3) . '/php/bin/rsession';
$table = 'rs_tool_' . getmypid();
$path = sql_path('tool', "table=$table");
$run = function (array $args) use ($tool) {
    $cmd = array_merge([PHP_BINARY, '-n', '-d', 'extension=' . getenv('RSESSION_EXT'), $tool], $args);
    $p = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
    $out = stream_get_contents($pipes[1]);
    $err = stream_get_contents($pipes[2]);
    return [proc_close($p), $out, $err];
};
[$rc, $ddl] = $run(['--save-path', $path, 'schema']);
var_dump($rc, preg_match_all('/CREATE (UNLOGGED )?TABLE IF NOT EXISTS/', $ddl), str_contains($ddl, "{$table}_user"), str_contains($ddl, "{$table}_expiry"));
$exists = fn() => sql_admin(sql_kind() === 'pgsql'
    ? "SELECT count(*) FROM pg_tables WHERE tablename LIKE '{$table}%'"
    : "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE '{$table}%'");
echo 'before: ', $exists(), "\n";
[$rc, , $err] = $run(['--save-path', $path, 'schema', '--apply']);
echo "apply: $rc ", trim($err), "\n";
echo 'after: ', $exists(), "\n";
[$rc] = $run(['--save-path', $path, 'schema', '--apply']);
echo "again: $rc\n";
// The tables work.
ini_set('session.save_handler', 'rsession');
session_save_path($path);
session_id('sqltool1');
session_start();
$_SESSION['v'] = 1;
session_write_close();
RSession\kill_all_sessions();
sql_admin("DROP TABLE $table, {$table}_generation, {$table}_holders");
// What it prints is what an operator pipes into psql / mariadb: it runs
// there as it is (MySQL: the procedures between DELIMITER lines).
$mysql = sql_kind() === 'mysql';
var_dump(preg_match_all('/CREATE PROCEDURE IF NOT EXISTS/', $ddl) === ($mysql ? 2 : 0));
$by_hand = "{$table}_h";
[, $ddl2] = $run(['--save-path', sql_path('tool', "table=$by_hand"), 'schema']);
// (psql: no NOTICEs of IF NOT EXISTS clauses on stderr.)
echo 'by hand: ', sql_admin(($mysql ? '' : "SET client_min_messages = warning;\n") . $ddl2 . 'SELECT 1'), "\n";
echo 'tables: ', $exists(), "\n";
if ($mysql) {
    echo 'procedures: ', sql_admin("SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = DATABASE() AND routine_name LIKE '{$by_hand}%'"), "\n";
} else {
    // Made by the superuser: the app user needs the rights a DBA grants.
    sql_admin("GRANT ALL ON $by_hand, {$by_hand}_generation, {$by_hand}_holders TO rs_app");
    echo "procedures: 2\n";
}
session_save_path(sql_path('tool', "table=$by_hand"));
session_id('sqltool2');
session_start();
$_SESSION['v'] = 2;
session_write_close();
session_start();
echo 'read back: ', $_SESSION['v'], "\n";
session_write_close();
sql_admin("DROP TABLE $by_hand, {$by_hand}_generation, {$by_hand}_holders");
if ($mysql) {
    sql_admin("DROP PROCEDURE {$table}_lock_v1; DROP PROCEDURE {$table}_write_v1; DROP PROCEDURE {$by_hand}_lock_v1; DROP PROCEDURE {$by_hand}_write_v1");
}
[$rc, , $err] = $run(['--save-path', sys_get_temp_dir(), 'schema']);
echo "files: $rc ", trim($err), "\n";
?>
--EXPECT--
int(0)
int(3)
bool(true)
bool(true)
before: 0
apply: 0 the tables exist now
after: 3
again: 0
bool(true)
by hand: 1
tables: 3
procedures: 2
read back: 2
files: 1 rsession: the files store has no SQL schema (only pgsql:// and mysql:// do)
