--TEST--
SQL: pcntl_fork() while the parent holds its session: the child works on its own connection and its exit neither closes the parent's connection nor frees its lock
--SKIPIF--
<?php if (!function_exists('pcntl_fork')) die('skip pcntl is not available'); ?>
--FILE--
<?php
require __DIR__ . '/setup.inc';
$dir = fresh_dir('sql-fork');
ini_set('session.save_handler', 'rsession');
ini_set('session.use_strict_mode', '0');
session_save_path(sql_path('fork'));
session_id('sqlfork1');
session_start();
$_SESSION['parent'] = 1;
$pid = pcntl_fork();
if ($pid === 0) {
    ob_start();
    set_error_handler(function ($no, $msg) use ($dir) {
        file_put_contents("$dir/child.txt", "$msg\n", FILE_APPEND);
        return true;
    });
    // The parent's session is the parent's to write.
    session_write_close();
    // A session of its own, on a connection of its own.
    session_id('sqlfork2');
    $started = session_start();
    $_SESSION['child'] = 1;
    file_put_contents("$dir/child-done", $started && session_write_close() ? 'written' : 'failed');
    ob_end_clean();
    // A normal exit: PHP's shutdown runs in the child, with the parent's
    // connection among what it inherited.
    exit(0);
}
pcntl_waitpid($pid, $status);
var_dump(pcntl_wexitstatus($status), file_get_contents("$dir/child-done"));
var_dump(str_contains(@file_get_contents("$dir/child.txt") ?: '', 'pcntl_fork'));
// The server still sees the parent's connection holding the lock.
$info = RSession\lock_info('sqlfork1');
var_dump($info !== null && $info['pid'] === getmypid());
$_SESSION['after'] = 1;
var_dump(session_write_close());
session_id('sqlfork1');
session_start();
var_dump($_SESSION);
session_destroy();
session_id('sqlfork2');
session_start();
var_dump($_SESSION);
session_destroy();
var_dump(RSession\lock_info('sqlfork1'));
?>
--EXPECT--
int(0)
string(7) "written"
bool(true)
bool(true)
bool(true)
array(2) {
  ["parent"]=>
  int(1)
  ["after"]=>
  int(1)
}
array(1) {
  ["child"]=>
  int(1)
}
NULL
