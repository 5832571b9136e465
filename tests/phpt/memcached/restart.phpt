--TEST--
memcached: a single server stopped and restarted: warnings while down, then recovery at once without restarting PHP
--FILE--
<?php
require __DIR__ . '/setup.inc';
$port = free_port();
$pid = start_private_memcached($port);
ini_set('session.save_handler', 'rsession');
session_save_path("memcached://127.0.0.1:$port?prefix=restart:&timeout_ms=" . 300 * slow() . '&connect_timeout_ms=' . 300 * slow());
$messages = [];
set_error_handler(function ($no, $m) use (&$messages) {
    if (error_reporting() & $no) $messages[] = $m;
    return true;
});
$run = function (string $phase) {
    $ok = 0;
    for ($i = 0; $i < 10; $i++) {
        session_id('mcrestart1');
        if (session_start()) {
            $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
            if (session_write_close()) $ok++;
        }
    }
    echo "$phase: $ok of 10 ok\n";
};
$run('up');
stop_private_memcached($pid);
$t = microtime(true);
$run('down');
var_dump(microtime(true) - $t < 5 * slow());
var_dump(count(array_filter($messages, fn($m) => str_starts_with($m, 'session_start(): rsession: '))) >= 10);
$pid = start_private_memcached($port);
$messages = [];
$run('restarted');
var_dump($messages);
stop_private_memcached($pid);
?>
--EXPECT--
up: 10 of 10 ok
down: 0 of 10 ok
bool(true)
bool(true)
restarted: 10 of 10 ok
array(0) {
}
