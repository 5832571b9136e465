--TEST--
Redis: a holder that stopped renewing past its lease has its write refused; the new holder's data is kept
--FILE--
<?php
require __DIR__ . '/setup.inc';
$path = redis_path('lost');
$dir = fresh_dir('redis-lost');
// The slow holder: lease 300 ms, renewal off (as if hung), holds 1.2 s.
putenv('RSESSION_TEST_NO_RENEW=1');
$slow = start_child("
    session_id('redislost1');
    session_start();
    touch('$dir/holding');
    \$_SESSION['by'] = 'slow';
    usleep(1200000);
    session_write_close();
    echo 'slow done';", ['session.save_path' => $path, 'rsession.lock_ttl_ms' => '300']);
putenv('RSESSION_TEST_NO_RENEW');
wait_for_file("$dir/holding");
usleep(500000);                          // past the slow holder's lease
ini_set('session.save_handler', 'rsession');
session_save_path($path);
session_id('redislost1');
var_dump(session_start());
$_SESSION['by'] = 'fast';
session_write_close();
echo preg_replace('/ in .* on line \d+/', '', trim(finish_child($slow))), "\n";
session_start();
var_dump($_SESSION['by']);
session_destroy();
?>
--EXPECTF--
bool(true)
Warning: session_write_close(): rsession: the session lock was lost (its lease expired or it was taken over); nothing was written

Warning: session_write_close(): Failed to write session data (rsession). Please verify that the current setting of session.save_path is correct (%s)
slow done
string(4) "fast"
