--TEST--
SQL: 8 processes x 40 locked increments end at exactly 320; a waiter is woken at the release
--FILE--
<?php
require __DIR__ . '/setup.inc';
$path = sql_path('increments');
$code = '
    for ($i = 0; $i < 40; $i++) {
        session_id("sqlincrements1");
        if (!session_start()) { fwrite(STDERR, "start failed\n"); exit(1); }
        $n = $_SESSION["n"] ?? 0;
        usleep(200);
        $_SESSION["n"] = $n + 1;
        session_write_close();
    }
    echo "done\n";';
$children = [];
for ($c = 0; $c < 8; $c++) {
    $children[] = start_child($code, ['session.save_path' => $path]);
}
$outputs = array_map('finish_child', $children);
echo count(array_filter($outputs, fn($o) => trim($o) === 'done')), " children done\n";
ini_set('session.save_handler', 'rsession');
session_save_path($path);
session_id('sqlincrements1');
session_start();
var_dump($_SESSION['n']);
session_destroy();

// Handoff: the waiter returns right after the holder's release; nothing
// polls, so only the server's wake-up explains a prompt return.
$dir = fresh_dir('sql-handoff');
$holder = start_child("
    session_id('sqlhandoff1');
    session_start();
    touch('$dir/holding');
    usleep(" . (300000 * slow()) . ");
    \$released = hrtime(true);
    session_write_close();
    echo \$released, \"\\n\";", ['session.save_path' => $path]);
wait_for_file("$dir/holding");
$waiter = start_child("
    session_id('sqlhandoff1');
    session_start();
    echo hrtime(true), \"\\n\";
    session_write_close();", ['session.save_path' => $path]);
$released = (int) finish_child($holder);
$acquired = (int) finish_child($waiter);
var_dump($acquired > $released, ($acquired - $released) / 1e6 < 200 * slow());
?>
--EXPECT--
8 children done
int(320)
bool(true)
bool(true)
