--TEST--
SQL: a holder killed with SIGKILL frees the lock at once (the connection is the lease); lock_info names it while it held
--FILE--
<?php
require __DIR__ . '/setup.inc';
$path = sql_path('killed');
$dir = fresh_dir('sql-killed');
// A 60 s lease would keep a network store's lock that long: here it does not apply.
$holder = start_child("
    session_id('sqlkilled1');
    session_start();
    touch('$dir/holding');
    sleep(30);", ['session.save_path' => $path, 'rsession.lock_ttl_ms' => '60000', 'session.lazy_write' => '0']);
wait_for_file("$dir/holding");
ini_set('session.save_handler', 'rsession');
session_save_path($path);
$info = RSession\lock_info('sqlkilled1');
var_dump($info['pid'] === proc_get_status($holder[0])['pid'], $info['host'] === gethostname(), $info['held_ms'] >= 0);
proc_terminate($holder[0], 9);
finish_child($holder);
$t = microtime(true);
session_id('sqlkilled1');
var_dump(session_start());
var_dump(microtime(true) - $t < 1.0 * slow());
session_destroy();
var_dump(RSession\lock_info('sqlkilled1'));
?>
--EXPECT--
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
NULL
