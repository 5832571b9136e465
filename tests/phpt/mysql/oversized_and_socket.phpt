--TEST--
mysql: data past max_allowed_packet fails loudly and the old data stays; the unix socket works like TCP
--FILE--
<?php
require __DIR__ . '/setup.inc';
ini_set('session.save_handler', 'rsession');
session_save_path(sql_path('oversized'));
session_id('myoversized1');
session_start();
$_SESSION['v'] = 'small';
session_write_close();
session_id('myoversized1');
session_start();
$_SESSION['v'] = str_repeat('x', 5 << 20);   // 5 MB: 10 MB as hex, over the server's 8 MB
session_write_close();
session_id('myoversized1');
session_start();
var_dump($_SESSION['v']);
// Still ours: a write that fits goes through at once.
$_SESSION['v'] = 'after';
var_dump(session_write_close());

$sock = getenv('RSESSION_TEST_MYSQL_SOCK');
$url = sql_url_as('rs_app:rs-app-pw');
session_save_path(preg_replace('#@[^/]*/#', '@/', $url) . "?socket=$sock&prefix=phpt-sql:oversized:" . getmypid() . ':');
session_id('myoversized1');
session_start(['read_and_close' => true]);
var_dump($_SESSION['v']);
?>
--EXPECTF--
Warning: session_write_close(): rsession: session data of %d bytes exceeds the store's limit of %d bytes; nothing was written in %s on line %d

Warning: session_write_close(): Failed to write session data (rsession). %s
string(5) "small"
bool(true)
string(5) "after"
