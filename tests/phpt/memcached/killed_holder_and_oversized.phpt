--TEST--
memcached: a SIGKILLed holder's lock frees within the lease; oversized data is refused and the old data kept
--FILE--
<?php
require __DIR__ . '/setup.inc';
$path = memcached_path('killed', '') . '&max_item_size=65536';
$dir = fresh_dir('mc-killed');
$holder = start_child("
    session_id('mckilled1');
    session_start();
    touch('$dir/holding');
    sleep(30);", ['session.save_path' => $path, 'rsession.lock_ttl_ms' => '1000']);
wait_for_file("$dir/holding");
ini_set('session.save_handler', 'rsession');
session_save_path($path);
var_dump(RSession\lock_info('mckilled1')['pid'] === proc_get_status($holder[0])['pid']);
proc_terminate($holder[0], 9);
finish_child($holder);
$t = microtime(true);
session_id('mckilled1');
var_dump(session_start(), microtime(true) - $t < 2.5 * slow());
$_SESSION['v'] = 'small';
session_write_close();

session_id('mckilled1');
session_start();
$_SESSION['v'] = str_repeat('x', 100000);
session_write_close();
session_id('mckilled1');
session_start();
var_dump($_SESSION['v']);
session_destroy();
?>
--EXPECTF--
bool(true)
bool(true)
bool(true)

Warning: session_write_close(): rsession: session data of %d bytes exceeds the store's limit of %d bytes; nothing was written in %s on line %d

Warning: session_write_close(): Failed to write session data (rsession). %s
string(5) "small"
