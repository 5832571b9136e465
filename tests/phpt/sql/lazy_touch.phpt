--TEST--
SQL: unchanged sessions record the access at most once per lazy_touch_s; with 0, at every request; never judged idle early
--FILE--
<?php
require __DIR__ . '/setup.inc';
ini_set('session.save_handler', 'rsession');
$run = function (string $test, string $extra) {
    session_save_path(sql_path($test, $extra));
    session_id('sqllazy1');
    session_start();
    $_SESSION['v'] = 1;
    session_write_close();
    $written = sql_last_access($test, 'sqllazy1');
    sleep(2);
    for ($i = 0; $i < 3; $i++) {
        session_id('sqllazy1');
        session_start();       // unchanged: PHP's lazy write touches
        session_write_close();
    }
    return [$written, sql_last_access($test, 'sqllazy1')];
};
[$before, $after] = $run('lazy60', '');
echo 'default window: ', $before === $after ? 'not rewritten' : 'rewritten', "\n";
[$before, $after] = $run('lazy0', 'lazy_touch_s=0');
echo 'lazy_touch_s=0: ', $after > $before ? 'rewritten' : 'not rewritten', "\n";
// Timeout 6 s (window 3 s, half of it): used again at 2 s (not
// recorded), it is alive at 7 s, 5 s after that use.
session_save_path(sql_path('lazyalive'));
session_id('sqllazy2');
session_start();
RSession\set_timeout(6);
$_SESSION['v'] = 'kept';
session_write_close();
sleep(2);
session_id('sqllazy2');
session_start();
session_write_close();
sleep(5);
session_id('sqllazy2');
session_start(['read_and_close' => true]);
var_dump($_SESSION['v'] ?? 'gone');
?>
--EXPECT--
default window: not rewritten
lazy_touch_s=0: rewritten
string(4) "kept"
