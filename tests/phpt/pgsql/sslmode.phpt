--TEST--
pgsql: sslmode=require and verify-full refuse a server without TLS with a clear warning; prefer falls back to plain; 4 MB sessions pass whole
--FILE--
<?php
require __DIR__ . '/setup.inc';
ini_set('session.save_handler', 'rsession');
$messages = [];
set_error_handler(function ($no, $msg) use (&$messages) {
    $messages[] = $msg;
    return true;
});
foreach (['require', 'verify-full', 'prefer', 'disable'] as $mode) {
    session_save_path(sql_path('ssl', "sslmode=$mode"));
    session_id('pgssl1');
    $messages = [];
    $ok = session_start();
    echo "$mode: ", $ok ? 'ok' : $messages[0], "\n";
    if ($ok) {
        session_write_close();
    }
}
session_save_path(sql_path('large'));
session_id('pglarge1');
session_start();
$big = random_bytes(4 << 20);
$_SESSION['big'] = $big;
session_write_close();
session_id('pglarge1');
session_start(['read_and_close' => true]);
var_dump($_SESSION['big'] === $big);
?>
--EXPECTF--
require: session_start(): rsession: pgsql store: 127.0.0.1:%d: cannot connect: protocol error: the server does not offer TLS (sslmode=require)
verify-full: session_start(): rsession: pgsql store: 127.0.0.1:%d: cannot connect: protocol error: the server does not offer TLS (sslmode=verify-full)
prefer: ok
disable: ok
bool(true)
