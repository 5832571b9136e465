--TEST--
write-through memcached|pgsql: a holder whose cache lock was lost (the lock deleted behind its back, as an eviction or an expired lease does) has its store write refused after the next holder wrote; store and cache keep the newer data
--CONFLICTS--
write-through
--FILE--
<?php
require __DIR__ . '/setup.inc';
$port = free_port();
$pidFile = start_private_memcached($port);
[$path, $store] = wt_paths('lost', $port);
$prefix = 'phpt-wt:lost:' . getmypid() . ':';
$dir = fresh_dir('wt-lost');
echo run_child_php($path, 'session_id("wtlost1"); session_start(); $_SESSION["n"] = 10; session_write_close(); echo "made\n";');
$old = start_child('
    session_id("wtlost1");
    session_start();
    touch("' . $dir . '/holding");
    while (!file_exists("' . $dir . '/go")) usleep(5000);
    $_SESSION["n"] = $_SESSION["n"] + 1;
    $_SESSION["by"] = "old holder";
    set_error_handler(function ($no, $m) { echo "warning: $m\n"; return true; });
    session_write_close();', ['session.save_path' => $path]);
wait_for_file("$dir/holding");
// The cache forgets the lock.
$s = fsockopen('127.0.0.1', $port);
fwrite($s, "md {$prefix}wtlost1:l\r\n");
echo trim(fgets($s)), "\n";
fclose($s);
echo run_child_php($path, 'session_id("wtlost1"); var_dump(session_start()); $_SESSION["n"] += 5; $_SESSION["by"] = "next holder"; session_write_close();');
touch("$dir/go");
$out = finish_child($old);
echo $out;
foreach (['store' => $store, 'cache' => $path] as $what => $p) {
    echo "$what: ", run_child_php($p, 'session_id("wtlost1"); session_start(); echo $_SESSION["n"], " by ", $_SESSION["by"]; session_abort();'), "\n";
}
stop_private_memcached($pidFile);
?>
--EXPECTF--
made
HD
bool(true)
warning: session_write_close(): rsession: the session lock was lost (its lease expired or it was taken over); nothing was written
warning: session_write_close(): Failed to write session data (rsession). Please verify that the current setting of session.save_path is correct (%s)
store: 15 by next holder
cache: 15 by next holder
