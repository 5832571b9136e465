--TEST--
session_create_id() works inside and outside an active session
--INI--
session.use_strict_mode=1
--FILE--
<?php
require __DIR__ . '/setup.inc';
session_save_path(test_save_path('create_id'));
$outside = session_create_id('pre-');
session_start();
$inside = session_create_id();
var_dump(is_string($outside) && str_starts_with($outside, 'pre-'));
var_dump(is_string($inside) && $inside !== session_id());
session_destroy();
?>
--EXPECT--
bool(true)
bool(true)
