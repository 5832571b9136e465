--TEST--
memcached: 8 processes x 40 locked increments end at 320; a waiter gets the lock soon after release
--FILE--
<?php
require __DIR__ . '/setup.inc';
$path = memcached_path('increments');
$code = '
    for ($i = 0; $i < 40; $i++) {
        session_id("mcincrements1");
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
session_id('mcincrements1');
session_start();
var_dump($_SESSION['n']);
session_destroy();

$dir = fresh_dir('mc-handoff');
$holder = start_child("
    session_id('mchandoff1');
    session_start();
    touch('$dir/holding');
    usleep(" . (300000 * slow()) . ");   // outlasts the waiter's start-up, even under valgrind
    \$released = hrtime(true);
    session_write_close();
    echo \$released, \"\\n\";", ['session.save_path' => $path]);
wait_for_file("$dir/holding");
$waiter = start_child("
    session_id('mchandoff1');
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
