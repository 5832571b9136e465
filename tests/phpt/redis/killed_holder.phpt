--TEST--
Redis: a holder killed with SIGKILL frees the lock within its lease; lock_info names the holder meanwhile
--FILE--
<?php
require __DIR__ . '/setup.inc';
$path = redis_path('killed');
$dir = fresh_dir('redis-killed');
$holder = start_child("
    session_id('rediskilled1');
    session_start();
    touch('$dir/holding');
    sleep(30);", ['session.save_path' => $path, 'rsession.lock_ttl_ms' => '600']);
wait_for_file("$dir/holding");
ini_set('session.save_handler', 'rsession');
session_save_path($path);
$info = RSession\lock_info('rediskilled1');
var_dump($info['pid'] === proc_get_status($holder[0])['pid'], $info['host'] === gethostname());
proc_terminate($holder[0], 9);
finish_child($holder);
$t = microtime(true);
session_id('rediskilled1');
var_dump(session_start());
$waited = microtime(true) - $t;
var_dump($waited < 0.6 + 0.5 * slow());
session_destroy();
var_dump(RSession\lock_info('rediskilled1'));
?>
--EXPECT--
bool(true)
bool(true)
bool(true)
bool(true)
NULL
