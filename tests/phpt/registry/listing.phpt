--TEST--
user_sessions(): 3 sessions of one user, 1 of another, with their metadata; at once visible, ids only of that user
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('listing');
ini_set('session.save_path', $save);
$t0 = time();
make_session($save, 'listA1', 42, ['a' => 1], ['REMOTE_ADDR' => '192.0.2.10']);
make_session($save, 'listA2', 42, ['a' => 2], ['REMOTE_ADDR' => '192.0.2.11']);
make_session($save, 'listA3', '42', ['a' => 3]);
make_session($save, 'listB1', 'bob', ['b' => 1]);
make_session($save, 'anon1', null);

var_dump(ids(RSession\user_sessions(42)));
var_dump(ids(RSession\user_sessions('42')) === ids(RSession\user_sessions(42)));
var_dump(ids(RSession\user_sessions('bob')));
var_dump(RSession\user_sessions('nobody'));

$rows = array_column(RSession\user_sessions(42), null, 'id');
$r = $rows['listA1'];
var_dump(array_keys($r));
var_dump($r['user'], $r['timeout'], $r['first_ip'], $r['last_ip']);
var_dump($r['created'] >= $t0 && $r['created'] <= time(), $r['last_access'] >= $r['created']);
var_dump($rows['listA3']['first_ip']);

// A later request from another address: last_ip follows, first_ip stays.
run_child($save, "session_id('listA1'); session_start(); \$_SESSION['a']++; session_write_close();", [], ['REMOTE_ADDR' => '198.51.100.5']);
$r = array_column(RSession\user_sessions(42), null, 'id')['listA1'];
var_dump($r['first_ip'], $r['last_ip']);

// Visible before the request that called set_user() ends.
$sig = signal_dir('listing');
$holder = start_child($save, "
    session_id('listC1');
    session_start();
    RSession\\set_user('carol');
    touch('$sig/set');
    while (!file_exists('$sig/seen')) usleep(2000);
    session_write_close();");
wait_for_file("$sig/set");
var_dump(ids(RSession\user_sessions('carol')));
touch("$sig/seen");
finish_child($holder);
echo "done\n";
?>
--EXPECT--
array(3) {
  [0]=>
  string(6) "listA1"
  [1]=>
  string(6) "listA2"
  [2]=>
  string(6) "listA3"
}
bool(true)
array(1) {
  [0]=>
  string(6) "listB1"
}
array(0) {
}
array(7) {
  [0]=>
  string(2) "id"
  [1]=>
  string(4) "user"
  [2]=>
  string(7) "created"
  [3]=>
  string(11) "last_access"
  [4]=>
  string(7) "timeout"
  [5]=>
  string(8) "first_ip"
  [6]=>
  string(7) "last_ip"
}
string(2) "42"
int(1440)
string(10) "192.0.2.10"
string(10) "192.0.2.10"
bool(true)
bool(true)
NULL
string(10) "192.0.2.10"
string(12) "198.51.100.5"
array(1) {
  [0]=>
  string(6) "listC1"
}
done
