--TEST--
A holder killed with SIGKILL, or ended by a fatal error, frees the lock at once
--FILE--
<?php
require __DIR__ . '/setup.inc';
$dir = fresh_dir('lock_freed_on_kill_and_fatal');
$save = var_export($dir, true);

// SIGKILL while holding.
$holder = start_child("
    session_save_path($save);
    session_id('killedholder1');
    session_start();
    touch($save . '/holding');
    sleep(30);");
wait_for_file("$dir/holding");
ini_set('session.save_handler', 'rsession');
session_save_path($dir);
var_dump(RSession\lock_info('killedholder1')['pid'] === proc_get_status($holder[0])['pid']);
proc_terminate($holder[0], 9);
finish_child($holder);
ini_set('session.save_handler', 'rsession');
ini_set('rsession.lock_wait_ms', '2000');
session_save_path($dir);
session_id('killedholder1');
$t = microtime(true);
var_dump(session_start(), microtime(true) - $t < 1.0 * slow());
session_write_close();

// Fatal error while holding: PHP still writes and closes at shutdown, as
// with the stock files handler; the lock is then free.
$fatal = start_child("
    session_save_path($save);
    session_id('fatalholder1');
    session_start();
    \$_SESSION['before'] = 'fatal';
    undefined_function_here();");
$out = finish_child($fatal);
var_dump(str_contains($out, 'Call to undefined function'));
var_dump(RSession\lock_info('fatalholder1'));
session_id('fatalholder1');
$t = microtime(true);
var_dump(session_start(), microtime(true) - $t < 1.0 * slow(), $_SESSION['before'] ?? null);
session_destroy();
?>
--EXPECT--
bool(true)
bool(true)
bool(true)
bool(true)
NULL
bool(true)
bool(true)
string(5) "fatal"
