--TEST--
Redis: stopped and restarted under a running loop: warnings while down, then recovery without restarting PHP
--SKIPIF--
<?php if (getenv('RSESSION_REDIS_URL')) die('skip on a private single server only');
?>
--FILE--
<?php
require __DIR__ . '/setup.inc';
$port = free_port();
$pidFile = start_private_redis($port);
ini_set('session.save_handler', 'rsession');
session_save_path("redis://127.0.0.1:$port?prefix=restart:&connect_timeout_ms=" . 200 * slow() . "&timeout_ms=" . 200 * slow());
$messages = [];
set_error_handler(function ($no, $msg) use (&$messages) {
    if (error_reporting() & $no) {
        $messages[] = $msg;
    }
    return true;
});
$phase = function (string $name, int $n) {
    $ok = $failed = 0;
    for ($i = 0; $i < $n; $i++) {
        session_id('redisrestart1');
        if (session_start()) {
            $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
            session_write_close() ? $ok++ : $failed++;
        } else {
            $failed++;
        }
    }
    echo "$name: ", $ok > 0 ? 'some ok' : 'none ok', ', ', $failed > 0 ? 'some failed' : 'none failed', "\n";
};
$phase('up', 20);
var_dump($messages);
stop_private_redis($pidFile);
$t = microtime(true);
$phase('down', 5);
var_dump(microtime(true) - $t < 5.0 * slow());      // no hang
$ours = array_values(array_filter($messages, fn($m) => str_starts_with($m, 'session_start(): rsession: ')));
var_dump(count($ours) === 5);
echo $ours[0], "\n";
$messages = [];
$pidFile = start_private_redis($port);
$phase('restarted', 20);
var_dump($messages);
stop_private_redis($pidFile);
?>
--EXPECTF--
up: some ok, none failed
array(0) {
}
down: none ok, some failed
bool(true)
bool(true)
session_start(): rsession: redis store: 127.0.0.1:%d: %s
restarted: some ok, none failed
array(0) {
}
