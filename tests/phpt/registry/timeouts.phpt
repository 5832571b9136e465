--TEST--
Timeouts decided by the handler: 2 s expires while gc_maxlifetime is 1440; 0 survives gc with gc_maxlifetime=1
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('timeouts');
ini_set('session.save_path', $save);
run_child($save, "
    session_id('short1'); session_start(); \$_SESSION['v'] = 's';
    RSession\\set_user('gina'); RSession\\set_timeout(2); session_write_close();
    session_id('never1'); session_start(); \$_SESSION['v'] = 'n';
    RSession\\set_user('gina'); RSession\\set_timeout(0); session_write_close();
    session_id('plain1'); session_start(); \$_SESSION['v'] = 'p';
    RSession\\set_user('gina'); session_write_close();", ['session.gc_maxlifetime' => '1440']);
$t = array_column(RSession\user_sessions('gina'), 'timeout', 'id');
ksort($t);
var_dump($t);
sleep(4);
// The 2 s session is gone from the listing and reads as new; the others live.
var_dump(ids(RSession\user_sessions('gina')));
var_dump(session_data($save, 'short1'));
var_dump(session_data($save, 'never1'));
// gc with gc_maxlifetime=1 removes the plain one but never the timeout-0 one.
echo run_child($save, "session_id('gcrunner'); session_start(); var_dump(session_gc() >= 0);",
    ['session.gc_maxlifetime' => '1']);
var_dump(run_child($save, "session_id('never1'); session_start(['read_and_close' => true]); echo json_encode(\$_SESSION);",
    ['session.gc_maxlifetime' => '1']));
var_dump(run_child($save, "session_id('plain1'); session_start(['read_and_close' => true]); echo json_encode(\$_SESSION);",
    ['session.gc_maxlifetime' => '1']));
ini_set('session.gc_maxlifetime', '1');
var_dump(ids(RSession\user_sessions('gina')));
?>
--EXPECT--
array(3) {
  ["never1"]=>
  int(0)
  ["plain1"]=>
  int(1440)
  ["short1"]=>
  int(2)
}
array(2) {
  [0]=>
  string(6) "never1"
  [1]=>
  string(6) "plain1"
}
string(2) "[]"
string(9) "{"v":"n"}"
bool(true)
string(9) "{"v":"n"}"
string(2) "[]"
array(1) {
  [0]=>
  string(6) "never1"
}
