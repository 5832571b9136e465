--TEST--
Redis: lock_wait_ms gives up in time naming the holder; lock_failure=readonly and read_only never wait or write
--FILE--
<?php
require __DIR__ . '/setup.inc';
$path = redis_path('lockwait');
$dir = fresh_dir('redis-lockwait');
ini_set('session.save_handler', 'rsession');
session_save_path($path);
session_id('redislockwait1');
session_start();
$_SESSION['v'] = 'stored';
session_write_close();

$holder = start_child("
    session_id('redislockwait1');
    session_start();
    touch('$dir/holding');
    usleep(2500000);
    session_write_close();", ['session.save_path' => $path]);
wait_for_file("$dir/holding");
$pid = proc_get_status($holder[0])['pid'];

ini_set('rsession.lock_wait_ms', '200');
$t = microtime(true);
var_dump(@session_start());
$waited = microtime(true) - $t;
var_dump($waited >= 0.2 && $waited < 1.5 * slow());
echo "\n";
$msg = '';

// The warning itself, captured.
// (A failed start forgets the id: name it again before each start.)
set_error_handler(function ($no, $m) use (&$msg) { $msg .= $m . "\n"; return true; }, E_WARNING);
session_id('redislockwait1');
session_start();
restore_error_handler();
var_dump(str_contains($msg, "rsession: gave up waiting for the lock on session redisloc") &&
    str_contains($msg, "held by pid $pid on host " . gethostname()));

ini_set('rsession.lock_failure', 'readonly');
session_id('redislockwait1');
var_dump(session_start(), $_SESSION['v']);
$_SESSION['v'] = 'changed';
@session_write_close();

ini_set('rsession.lock_failure', 'fail');
ini_set('rsession.read_only', '1');
$t = microtime(true);
session_id('redislockwait1');
var_dump(session_start(), microtime(true) - $t < 0.15 * slow(), $_SESSION['v']);
session_write_close();

finish_child($holder);                  // it releases normally
ini_set('rsession.read_only', '0');
ini_set('rsession.lock_wait_ms', '5000');
session_id('redislockwait1');
session_start();
var_dump($_SESSION['v']);
session_destroy();
?>
--EXPECTF--
bool(false)
bool(true)

bool(true)

Notice: session_start(): rsession: gave up waiting for the lock on session redisloc… after %d ms; held by pid %d on host %s for %d ms (uri %s); the session is read-only for this request in %s on line %d
bool(true)
string(6) "stored"
bool(true)
bool(true)
string(6) "stored"
string(6) "stored"
