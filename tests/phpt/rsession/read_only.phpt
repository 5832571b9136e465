--TEST--
rsession.read_only=1 reads without waiting for a held lock, writes nothing, notices changes
--FILE--
<?php
require __DIR__ . '/setup.inc';
$dir = fresh_dir('read_only');
$save = var_export($dir, true);
ini_set('session.save_handler', 'rsession');
session_save_path($dir);
session_id('readonlyshared1');
session_start();
$_SESSION['v'] = 'stored';
session_write_close();

$holder = start_child("
    session_save_path($save);
    session_id('readonlyshared1');
    session_start();
    touch($save . '/holding');
    usleep(3000000);
    session_write_close();");
wait_for_file("$dir/holding");

ini_set('rsession.read_only', '1');
session_id('readonlyshared1');
$t = microtime(true);
var_dump(session_start());
var_dump(microtime(true) - $t < 1.0 * slow(), $_SESSION['v']);
session_write_close();                 // unchanged: silent
session_start();
$_SESSION['v'] = 'changed';
session_write_close();                 // changed: notice, nothing written
$out = ob_get_clean();
ob_start();
echo $out;
proc_terminate($holder[0], 9);
finish_child($holder);

ini_set('rsession.read_only', '0');
session_start();
var_dump($_SESSION['v']);
session_destroy();
?>
--EXPECTF--
bool(true)
bool(true)
string(6) "stored"

Notice: session_write_close(): rsession: session readonly… was opened read-only; the changes made to $_SESSION were not saved in %s on line %d
string(6) "stored"
