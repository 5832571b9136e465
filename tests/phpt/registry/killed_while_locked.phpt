--TEST--
A session killed while another request holds its lock stays dead: the kill returns at once, that request's write is refused
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('killed_locked');
ini_set('session.save_path', $save);
make_session($save, 'zombie1', 'frank', ['v' => 'before']);
$sig = signal_dir('killed_locked');
$holder = start_child($save, "
    session_id('zombie1');
    session_start();
    touch('$sig/holding');
    while (!file_exists('$sig/killed')) usleep(2000);
    \$_SESSION['v'] = 'zombie write';
    RSession\\set_timeout(0) ;
", ['rsession.lock_wait_ms' => '0']);
wait_for_file("$sig/holding");
$info = RSession\lock_info('zombie1');
var_dump($info['pid'] > 0, $info['host'] === gethostname(), is_int($info['held_ms']));
$t = microtime(true);
var_dump(RSession\kill_session('zombie1'));
var_dump(microtime(true) - $t < 1.0 * slow());
touch("$sig/killed");
$out = finish_child($holder);
// The holder is told, with an exception (set_timeout) and a notice (write).
var_dump(str_contains($out, 'rsession:') && str_contains($out, 'killed'));
var_dump(session_data($save, 'zombie1'));
var_dump(RSession\user_sessions('frank'));
var_dump(RSession\lock_info('zombie1'));
?>
--EXPECT--
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
string(2) "[]"
array(0) {
}
NULL
