--TEST--
Round trip of binary session data (NUL bytes, all byte values)
--INI--
session.use_strict_mode=0
session.serialize_handler=php_serialize
--FILE--
<?php
require __DIR__ . '/setup.inc';
session_save_path(test_save_path('round_trip_binary'));
$all = '';
for ($i = 0; $i < 256; $i++) $all .= chr($i);

session_id('roundtripbinary01');
var_dump(session_start());
$_SESSION['nul'] = "a\0b\0";
$_SESSION['all'] = $all;
var_dump(session_write_close());

$_SESSION = [];
session_id('roundtripbinary01');
var_dump(session_start());
var_dump($_SESSION['nul'] === "a\0b\0", $_SESSION['all'] === $all);
session_destroy();
?>
--EXPECT--
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
