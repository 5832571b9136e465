--TEST--
SQL: a wrong password, an unknown database and a user without write privileges on the table each give a clear warning
--FILE--
<?php
require __DIR__ . '/setup.inc';
ini_set('session.save_handler', 'rsession');
// The tables exist (created on first use by the owner).
session_save_path(sql_path('creds'));
session_id('sqlcreds1');
session_start();
$_SESSION['v'] = 1;
session_write_close();
$messages = [];
set_error_handler(function ($no, $msg) use (&$messages) {
    $messages[] = $msg;
    return true;
});
$try = function (string $url) use (&$messages) {
    session_save_path($url . '?prefix=phpt-sql:creds:' . getmypid() . ':');
    session_id('sqlcreds1');
    $messages = [];
    if (session_start()) {
        $_SESSION['v'] = 2;
        session_write_close();
    }
    echo $messages ? $messages[0] : 'no warning', "\n";
};
$try(sql_url_as('rs_app:wrong-password'));
$try(sql_url_as('rs_app:rs-app-pw', 'no_such_db'));
$try(sql_url_as('rs_readonly:readonly'));
// The session is as the owner left it.
session_save_path(sql_path('creds'));
session_id('sqlcreds1');
session_start(['read_and_close' => true]);
var_dump($_SESSION['v']);
?>
--EXPECTF--
session_start(): rsession: %s store: 127.0.0.1:%d: cannot connect: %s
session_start(): rsession: %s store: 127.0.0.1:%d: cannot connect: %sno_such_db%s
session_start(): rsession: %s store: 127.0.0.1:%d: %s: %sdenied%s
int(1)
