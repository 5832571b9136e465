--TEST--
kill_all_sessions() ends every session at once; sessions created afterwards live
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('kill_all');
ini_set('session.save_path', $save);
for ($i = 1; $i <= 5; $i++) {
    make_session($save, "all$i", $i % 2 ? 'odd' : 'even', ['i' => $i]);
}
$n = RSession\kill_all_sessions();
var_dump($n === -1 || $n === 5);
for ($i = 1; $i <= 5; $i++) {
    echo session_data($save, "all$i"), "\n";
}
var_dump(RSession\user_sessions('odd'), RSession\user_sessions('even'));
// Strict mode no longer adopts a killed id.
echo run_child($save, "session_id('all1'); session_start(); echo session_id() === 'all1' ? 'adopted' : 'fresh id', \"\\n\";",
    ['session.use_strict_mode' => '1']);
make_session($save, 'after1', 'odd', ['new' => true]);
var_dump(ids(RSession\user_sessions('odd')));
echo session_data($save, 'after1'), "\n";
?>
--EXPECT--
bool(true)
[]
[]
[]
[]
[]
array(0) {
}
array(0) {
}
fresh id
array(1) {
  [0]=>
  string(6) "after1"
}
{"new":true}
