--TEST--
memcached: one of two servers stopped: a warning, then sessions keep working on the other
--FILE--
<?php
require __DIR__ . '/setup.inc';
$port = free_port();
$pid = start_private_memcached($port);
$live = getenv('RSESSION_TEST_MEMCACHED') ?: 'memcached://127.0.0.1:21211';
ini_set('session.save_handler', 'rsession');
session_save_path(memcached_path('down', "$live,127.0.0.1:$port") . '&timeout_ms=300&connect_timeout_ms=300');
$messages = [];
set_error_handler(function ($no, $m) use (&$messages) { $messages[] = $m; return true; });
$run = function (string $phase) {
    $ok = 0;
    for ($i = 0; $i < 30; $i++) {
        session_id("mcdown$i");
        if (session_start()) {
            $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
            if (session_write_close()) $ok++;
        }
    }
    echo "$phase: $ok of 30 ok\n";
};
$run('both up');
stop_private_memcached($pid);
$t = microtime(true);
$run('one down');
var_dump(microtime(true) - $t < 5 * slow());
$skips = array_filter($messages, fn($m) => str_contains($m, "rsession: memcached store: server 127.0.0.1:$port is not answering"));
var_dump(count($skips) >= 1);
?>
--EXPECT--
both up: 30 of 30 ok
one down: 30 of 30 ok
bool(true)
bool(true)
