--TEST--
A bad rsession.* INI value: session_start() false with an rsession: warning
--INI--
session.save_handler=rsession
rsession.lock_wait_ms=abc
--FILE--
<?php
require __DIR__ . '/setup.inc';
session_save_path(fresh_dir('bad_ini'));
var_dump(session_start());
ini_set('rsession.lock_wait_ms', '100');
ini_set('rsession.lock_failure', 'sometimes');
var_dump(session_start());
ini_set('rsession.lock_failure', 'readonly');
var_dump(session_start());
?>
--EXPECTF--
Warning: session_start(): rsession: option "rsession.lock_wait_ms": "abc" is not a number of milliseconds (0 to 86400000) in %s on line %d

Warning: session_start(): Failed to initialize storage module: rsession (path: %s) in %s on line %d
bool(false)

Warning: session_start(): rsession: option "rsession.lock_failure": "sometimes" is neither "fail" nor "readonly" in %s on line %d

Warning: session_start(): Failed to initialize storage module: rsession (path: %s) in %s on line %d
bool(false)
bool(true)
