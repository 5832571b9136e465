--TEST--
Without strict mode a malformed id makes session_start() fail with an rsession: warning
--INI--
session.save_handler=rsession
session.use_strict_mode=0
--FILE--
<?php
require __DIR__ . '/setup.inc';
session_save_path(fresh_dir('invalid_id_warning'));
session_id('../etc/passwd');
var_dump(session_start());
?>
--EXPECTF--
Warning: session_start(): rsession: invalid session id "../etc/passwd" (13 bytes): only A-Z a-z 0-9 ',' '-' are allowed, at most 256 bytes in %s on line %d

Warning: session_start(): Failed to read session data: rsession (path: %s) in %s on line %d
bool(false)
