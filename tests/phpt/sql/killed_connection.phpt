--TEST--
SQL: a holder whose connection the server ended (pg_terminate_backend / KILL) may not write; the next holder's data stays
--FILE--
<?php
require __DIR__ . '/setup.inc';
$path = sql_path('killedconn');
$dir = fresh_dir('sql-killedconn');
ini_set('session.save_handler', 'rsession');
session_save_path($path);
session_id('sqlkilledconn1');
session_start();
$_SESSION['v'] = 'before';
session_write_close();

$a = start_child("
    session_id('sqlkilledconn1');
    session_start();
    touch('$dir/holding');
    while (!file_exists('$dir/go')) { usleep(2000); }
    \$_SESSION['v'] = 'stale';
    session_write_close();
    echo \"closed\\n\";", ['session.save_path' => $path]);
wait_for_file("$dir/holding");
sql_kill_connection_of(proc_get_status($a[0])['pid']);
// The lock went with the connection: the next request gets it at once.
$b = finish_child(start_child("
    session_id('sqlkilledconn1');
    \$t = microtime(true);
    session_start();
    \$_SESSION['v'] = 'theirs';
    session_write_close();
    echo microtime(true) - \$t < 2 ? 'quick' : 'slow';", ['session.save_path' => $path]));
echo $b, "\n";
touch("$dir/go");
echo finish_child($a);
session_id('sqlkilledconn1');
session_start(['read_and_close' => true]);
var_dump($_SESSION['v']);
?>
--EXPECTF--
quick

Warning: session_write_close(): rsession: the session lock was lost %s; nothing was written in %s

Warning: session_write_close(): Failed to write session data (rsession). %s
closed
string(6) "theirs"
