--TEST--
Two processes on one id are serialised: the second starts only after the first released
--FILE--
<?php
require __DIR__ . '/setup.inc';
$dir = fresh_dir('concurrency_serialised');
$save = var_export($dir, true);
$holder = start_child("
    session_save_path($save);
    session_id('serialisedshared1');
    session_start();
    touch($save . '/holding');
    usleep(300000);
    \$_SESSION['by'] = 'first';
    \$released = microtime(true);
    session_write_close();
    echo 'released ', \$released, \"\\n\";");
wait_for_file("$dir/holding");
$waiter = start_child("
    session_save_path($save);
    session_id('serialisedshared1');
    \$t = microtime(true);
    session_start();
    \$got = microtime(true);
    echo 'acquired ', \$got, ' saw ', \$_SESSION['by'] ?? 'nothing', \"\\n\";
    session_write_close();");
$h = finish_child($holder);
$w = finish_child($waiter);
preg_match('/released ([\d.]+)/', $h, $m1);
preg_match('/acquired ([\d.]+) saw (\w+)/', $w, $m2);
var_dump((float)$m2[1] >= (float)$m1[1]);
var_dump($m2[2]);
?>
--EXPECT--
bool(true)
string(5) "first"
