--TEST--
rsession.read_only=1 reads without waiting for a held lock and writes nothing; restarting with it off takes the lock
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('read_only');
ini_set('session.save_path', $save);
make_session($save, 'ro1', 'hank', ['v' => 'stored']);
$sig = signal_dir('read_only');
$holder = start_child($save, "
    session_id('ro1');
    session_start();
    touch('$sig/holding');
    usleep(1500000 * " . slow() . ");
    \$_SESSION['v'] = 'by holder';
    session_write_close();");
wait_for_file("$sig/holding");
echo run_child($save, '
    $t = microtime(true);
    ini_set("rsession.read_only", "1");
    session_id("ro1");
    var_dump(session_start());
    var_dump(microtime(true) - $t < 1.0 * ' . slow() . ');
    var_dump($_SESSION["v"]);
    // The pattern for upgrading: close, switch read_only off, start again
    // (this waits for the holder, then sees its write).
    session_write_close();
    ini_set("rsession.read_only", "0");
    session_start();
    var_dump($_SESSION["v"]);
    session_write_close();
    ini_set("rsession.read_only", "1");
    session_start();
    $_SESSION["v"] = "changed while read-only";
    try { RSession\set_user("x"); } catch (RSession\Exception $e) { echo $e->getMessage(), "\n"; }
    session_write_close();
    echo ob_get_clean();');
finish_child($holder);
echo session_data($save, 'ro1'), "\n";
?>
--EXPECTF--
bool(true)
bool(true)
string(6) "stored"
string(9) "by holder"
rsession: the session is read-only in this request %s
%ANotice: session_write_close(): rsession: session ro1 was opened read-only; the changes made to $_SESSION were not saved in %s
{"v":"by holder"}
