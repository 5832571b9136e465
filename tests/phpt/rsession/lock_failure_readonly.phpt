--TEST--
rsession.lock_failure=readonly: a lock timeout starts the session read-only with a notice
--FILE--
<?php
require __DIR__ . '/setup.inc';
$dir = fresh_dir('lock_failure_readonly');
$save = var_export($dir, true);
ini_set('session.save_handler', 'rsession');
session_save_path($dir);
session_id('lockfailreadonly1');
session_start();
$_SESSION['v'] = 'stored';
session_write_close();

$holder = start_child("
    session_save_path($save);
    session_id('lockfailreadonly1');
    session_start();
    touch($save . '/holding');
    usleep(3000000);
    session_write_close();");
wait_for_file("$dir/holding");

ini_set('rsession.lock_wait_ms', '100');
ini_set('rsession.lock_failure', 'readonly');
session_id('lockfailreadonly1');
var_dump(session_start());
var_dump($_SESSION['v']);
$_SESSION['v'] = 'changed';
session_write_close();
proc_terminate($holder[0], 9);
finish_child($holder);

ini_set('rsession.lock_failure', 'fail');
session_start();
var_dump($_SESSION['v']);
session_destroy();
?>
--EXPECTF--
Notice: session_start(): rsession: gave up waiting for the lock on session lockfail… after %d ms; held by pid %d on host %s for %d ms (uri %s); the session is read-only for this request in %s on line %d
bool(true)
string(6) "stored"

Notice: session_write_close(): rsession: session lockfail… was opened read-only; the changes made to $_SESSION were not saved in %s on line %d
string(6) "stored"
