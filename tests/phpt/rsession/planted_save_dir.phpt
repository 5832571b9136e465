--TEST--
A save directory that others can write into (or that another user owns) is refused with an rsession: warning; a planted session is never adopted
--FILE--
<?php
require __DIR__ . '/setup.inc';
$dir = sys_get_temp_dir() . '/rsession-phpt/planted-' . getmypid();
@mkdir($dir, 0700, true);
chmod($dir, 0777);
// A local user got there first and planted a session, as in /tmp/rsession.
file_put_contents("$dir/sess_planted1", 'is_admin|b:1;');
ini_set('session.save_handler', 'rsession');
ini_set('session.use_strict_mode', '1');
session_save_path($dir);
session_id('planted1');
set_error_handler(function ($no, $msg) { echo $msg, "\n"; return true; });
var_dump(session_start());
restore_error_handler();
var_dump($_SESSION['is_admin'] ?? null);
// Once it is ours alone, it is used.
chmod($dir, 0700);
unlink("$dir/sess_planted1");
var_dump(session_start(), session_status() === PHP_SESSION_ACTIVE);
session_write_close();
?>
--EXPECTF--
session_start(): rsession: files store: save directory %s/planted-%d is not safe to use: group or others may write into it (mode 777): anyone who can write there could plant sessions; remove it or choose another session.save_path
session_start(): Failed to initialize storage module: rsession (path: %s)
bool(false)
NULL
bool(true)
bool(true)
