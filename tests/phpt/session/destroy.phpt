--TEST--
session_destroy() removes the data; the id is not adopted again under strict mode
--INI--
session.use_strict_mode=1
--FILE--
<?php
require __DIR__ . '/setup.inc';
session_save_path(test_save_path('destroy'));
session_start();
$id = session_id();
$_SESSION['a'] = 1;
session_write_close();

session_id($id);
session_start();
var_dump($_SESSION);
var_dump(session_destroy());
var_dump(session_status() === PHP_SESSION_NONE);

session_id($id);
session_start();
var_dump(session_id() === $id, $_SESSION);
session_destroy();
?>
--EXPECT--
array(1) {
  ["a"]=>
  int(1)
}
bool(true)
bool(true)
bool(false)
array(0) {
}
