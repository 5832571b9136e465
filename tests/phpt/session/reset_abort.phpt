--TEST--
session_reset() rereads the stored data; session_abort() discards changes; neither deadlocks on its own lock
--INI--
session.use_strict_mode=0
--FILE--
<?php
require __DIR__ . '/setup.inc';
session_save_path(test_save_path('reset_abort'));
session_id('resetabort01');
session_start();
$_SESSION['v'] = 'stored';
session_write_close();

session_start();
$_SESSION['v'] = 'changed';
var_dump(session_reset());
var_dump($_SESSION['v']);
$_SESSION['v'] = 'changed again';
var_dump(session_abort());

session_start();
var_dump($_SESSION['v']);
$_SESSION['v'] = 'written';
session_write_close();
session_start();
var_dump($_SESSION['v']);
session_destroy();
?>
--EXPECT--
bool(true)
string(6) "stored"
bool(true)
string(6) "stored"
string(7) "written"
