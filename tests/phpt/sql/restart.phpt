--TEST--
SQL: the server stopped and started again under a running loop: warnings while down, recovery without restarting PHP
--CONFLICTS--
all
--FILE--
<?php
require __DIR__ . '/setup.inc';
ini_set('session.save_handler', 'rsession');
session_save_path(sql_path('restart', 'connect_timeout_ms=' . 300 * slow() . '&timeout_ms=' . 1000 * slow()));
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
        session_id('sqlrestart1');
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
sql_server(false);
$t = microtime(true);
$phase('down', 5);
var_dump(microtime(true) - $t < 5.0 * slow());      // no hang
$ours = array_values(array_filter($messages, fn($m) => str_starts_with($m, 'session_start(): rsession: ')));
var_dump(count($ours) === 5);
echo $ours[0], "\n";
$messages = [];
sql_server(true);
$phase('restarted', 20);
var_dump($messages);
session_id('sqlrestart1');
session_start();
var_dump($_SESSION['n']);
session_destroy();
?>
--EXPECTF--
up: some ok, none failed
array(0) {
}
down: none ok, some failed
bool(true)
bool(true)
session_start(): rsession: %s store: 127.0.0.1:%d: cannot connect: %s
restarted: some ok, none failed
array(0) {
}
int(40)
