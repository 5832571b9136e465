--TEST--
kill_user_sessions() with keep, kill_session(): the killed read as new and leave the listing, the kept one lives
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('kill_keep');
ini_set('session.save_path', $save);
foreach (['killK1', 'killK2', 'killK3'] as $id) {
    make_session($save, $id, 'dave', ['id' => $id]);
}
make_session($save, 'killOther', 'erin');
var_dump(RSession\kill_user_sessions('dave', 'killK2'));
var_dump(ids(RSession\user_sessions('dave')));
var_dump(session_data($save, 'killK1'), session_data($save, 'killK2'));
var_dump(ids(RSession\user_sessions('erin')));
var_dump(RSession\kill_user_sessions('dave'));
var_dump(RSession\user_sessions('dave'));
var_dump(RSession\kill_user_sessions('nobody'));
var_dump(RSession\kill_session('killOther'), RSession\kill_session('killOther'));
var_dump(RSession\user_sessions('erin'));
try {
    RSession\kill_session('../etc/passwd');
} catch (RSession\Exception $e) {
    echo $e->getMessage(), "\n";
}
try {
    RSession\kill_user_sessions('dave', "bad\nid");
} catch (RSession\Exception $e) {
    echo $e->getMessage(), "\n";
}
?>
--EXPECTF--
int(2)
array(1) {
  [0]=>
  string(6) "killK2"
}
string(2) "[]"
string(15) "{"id":"killK2"}"
array(1) {
  [0]=>
  string(9) "killOther"
}
int(1)
array(0) {
}
int(0)
bool(true)
bool(false)
array(0) {
}
rsession: invalid session id "../etc/passwd" (13 bytes)%s
rsession: invalid session id "bad?id" (6 bytes)%s
