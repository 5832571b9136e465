--TEST--
pcntl_fork() with an open session: the child neither writes the session nor frees or uses the parent's lock and connection; the parent's write lands
--SKIPIF--
<?php if (!function_exists('pcntl_fork')) die('skip pcntl is not available'); ?>
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('fork');
ini_set('session.save_path', $save);
make_session($save, 'forked1', 'fay', ['n' => 1]);
$sig = signal_dir('fork');
echo run_child($save, '
    session_id("forked1");
    session_start();
    $_SESSION["parent"] = 1;
    $pid = pcntl_fork();
    if ($pid === 0) {
        set_error_handler(function ($no, $msg) {
            file_put_contents("' . $sig . '/child.txt", $msg . "\n", FILE_APPEND);
            return true;
        });
        $_SESSION["child"] = 1;
        RSession\lock_info("other1");
        exit(0);
    }
    pcntl_waitpid($pid, $status);
    $info = RSession\lock_info("forked1");
    var_dump(pcntl_wexitstatus($status), $info !== null && $info["pid"] === getmypid());
    RSession\set_timeout(900);
    var_dump(session_write_close());
    echo ob_get_clean();');
$child = @file_get_contents("$sig/child.txt") ?: '';
var_dump(str_contains($child, 'rsession:') && str_contains($child, 'pcntl_fork'));
var_dump(session_data($save, 'forked1'));
var_dump(RSession\user_sessions('fay')[0]['timeout'], RSession\lock_info('forked1'));
?>
--EXPECT--
int(0)
bool(true)
bool(true)
bool(true)
string(18) "{"n":1,"parent":1}"
int(900)
NULL
