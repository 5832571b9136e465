--TEST--
8 processes x 40 locked increments on one session end at exactly 320
--FILE--
<?php
require __DIR__ . '/setup.inc';
$dir = fresh_dir('concurrency_increments');
$code = sprintf('
    session_save_path(%s);
    for ($i = 0; $i < 40; $i++) {
        session_id("incrementsshared1");
        if (!session_start()) { fwrite(STDERR, "start failed\n"); exit(1); }
        $n = $_SESSION["n"] ?? 0;
        usleep(200);                      // widen the read-modify-write window
        $_SESSION["n"] = $n + 1;
        session_write_close();
    }
    echo "done\n";', var_export($dir, true));
$children = [];
for ($c = 0; $c < 8; $c++) {
    $children[] = start_child($code);
}
$outputs = array_map('finish_child', $children);
echo count(array_filter($outputs, fn($o) => trim($o) === 'done')), " children done\n";

session_save_path($dir);
session_id('incrementsshared1');
session_start();
var_dump($_SESSION['n']);
session_destroy();
?>
--EXPECT--
8 children done
int(320)
