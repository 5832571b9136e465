--TEST--
The registry through RSession\Handler methods; bad input is an RSession\Exception, never a crash
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('handler');
$h = new RSession\Handler($save);
session_set_save_handler($h, true);
session_id('hand1');
session_start();
$h->setUser('judy');
$_SESSION['v'] = 1;
session_write_close();
var_dump(ids($h->userSessions('judy')) === ['hand1'], ids($h->user_sessions('judy')) === ['hand1']);
var_dump(ids(RSession\user_sessions('judy')) === ['hand1']);
var_dump($h->lockInfo('hand1'), is_array($h->stats()));
var_dump($h->killUserSessions('judy', 'hand1'), $h->kill_session('hand1'), $h->killSession('hand1'));
var_dump($h->kill_all_sessions() <= 0);

$try = function (callable $f) {
    try {
        $f();
        echo "no exception\n";
    } catch (RSession\Exception $e) {
        echo $e->getMessage(), "\n";
    } catch (TypeError $e) {
        echo 'TypeError', "\n";
    }
};
$try(fn() => RSession\set_user('x'));           // no session active
$try(fn() => RSession\set_timeout(5));
session_id('hand2');
session_start();
$try(fn() => RSession\set_user(''));
$try(fn() => RSession\set_user(str_repeat('u', 513)));
$try(fn() => RSession\set_user(1.5));
$try(fn() => RSession\set_timeout(-1));
$try(fn() => RSession\user_sessions(['a']));
$try(fn() => RSession\set_user(0));
session_write_close();
var_dump(ids(RSession\user_sessions(0)));
?>
--EXPECTF--
bool(true)
bool(true)
bool(true)
NULL
bool(true)
int(0)
bool(true)
bool(false)
bool(true)
rsession: no session is active: call session_start() first
rsession: no session is active: call session_start() first
rsession: user id of 0 bytes: must be 1 to 512 bytes
rsession: user id of 513 bytes: must be 1 to 512 bytes
rsession: a user id must be a string or an int, %s given
rsession: timeout -1: must be 0 (never) or a number of seconds
rsession: a user id must be a string or an int, %s given
no exception
array(1) {
  [0]=>
  string(5) "hand2"
}
