--TEST--
rsession.lock_wait_ms makes a waiter give up in time, with a warning naming the holder
--FILE--
<?php
require __DIR__ . '/setup.inc';
$dir = fresh_dir('lock_wait_timeout');
$save = var_export($dir, true);
$holder = start_child("
    session_save_path($save);
    session_id('lockwaitshared1');
    session_start();
    touch($save . '/holding');
    echo getmypid(), \"\\n\";
    ob_end_flush();
    usleep(3000000);
    session_write_close();");
wait_for_file("$dir/holding");
ini_set('session.save_handler', 'rsession');
ini_set('rsession.lock_wait_ms', '200');
session_save_path($dir);
session_id('lockwaitshared1');
$t = microtime(true);
$ok = session_start();
$waited = microtime(true) - $t;
$out = ob_get_clean();
ob_start();
var_dump($ok);
var_dump($waited >= 0.2 && $waited < 2.0 * slow());
$pid = trim(fgets($holder[1]));
var_dump(str_contains($out, "rsession: gave up waiting for the lock on session lockwait"));
var_dump(str_contains($out, "held by pid $pid on host " . gethostname()));
var_dump(str_contains($out, "(uri Command line code)") || str_contains($out, "(uri -)") || preg_match('/\(uri [^)]+\)/', $out) === 1);
var_dump(RSession\stats()['lock_timeouts']);
proc_terminate($holder[0], 9);
finish_child($holder);
?>
--EXPECT--
bool(false)
bool(true)
bool(true)
bool(true)
bool(true)
int(1)
