--TEST--
Moodle recipe: php/moodle/rsession.php under Moodle's session manager: login files the session under its user with Moodle's timeout, locked requests lose no update, guests belong to nobody, logout
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('moodle_driver');
ini_set('session.save_path', $save);
$db = signal_dir('moodle_driver') . '/sessions.json';
$env = ['MOODLE_DB' => $db, 'MOODLE_SAVE_PATH' => $save, 'MOODLE_DRIVER' => dirname(__DIR__, 3) . '/php/moodle/rsession.php'];

/** One Moodle request: $code runs between the manager's start and write_close. */
function moodle(string $code, ?string $cookie = null, bool $lock = true, array $ini = []): string
{
    global $save, $env;
    $c = var_export($cookie, true);
    $l = var_export($lock, true);
    return run_child($save, "
        require '" . __DIR__ . "/moodle.inc';
        use core\\session\\manager;
        manager::start($c, $l);
        $code
        manager::write_close();
        echo ob_get_clean();", $ini, $env);
}

// A first visit: a session of nobody's.
$visitor = moodle('echo session_id();');
var_dump(strlen($visitor) > 20, RSession\user_sessions(5));

// Login regenerates the id; the new session is filed under user 5 with
// sessiontimeout + update frequency + 60 s, the old id is gone.
$s1 = moodle('manager::login_user(5); $_SESSION["SESSION"]->n = 0; echo session_id();', $visitor);
$list = RSession\user_sessions(5);
var_dump($s1 !== $visitor, ids($list) === [$s1], $list[0]['timeout']);
echo moodle('var_dump(manager::session_exists(' . var_export($s1, true) . '), manager::session_exists(' . var_export($visitor, true) . '));');

// Two browsers tabs of user 5 hammer the session: every update survives.
$code = '
    require "' . __DIR__ . '/moodle.inc";
    for ($i = 0; $i < 20; $i++) {
        core\session\manager::start(' . var_export($s1, true) . ');
        $n = $_SESSION["SESSION"]->n;
        usleep(300);
        $_SESSION["SESSION"]->n = $n + 1;
        core\session\manager::write_close();
    }
    echo "done";';
$tabs = [start_child($save, $code, [], $env), start_child($save, $code, [], $env)];
var_dump(array_map('finish_child', $tabs));
echo moodle('var_dump($_SESSION["USER"]->id, $_SESSION["SESSION"]->n);', $s1);

// The guest account is not filed under a user (all guests share it).
$guest = moodle('manager::login_user(1); echo session_id();');
var_dump(RSession\user_sessions(1));

// "Log in as": the session stays filed under the real user.
$as = moodle('manager::login_user(5); $_SESSION["USER"] = (object) ["id" => 8, "realuser" => 5]; echo session_id();');
var_dump(in_array($as, ids(RSession\user_sessions(5)), true), RSession\user_sessions(8));

// Logout: the old id ends; the fresh anonymous session inherits the
// registry's user through session_regenerate_id() (README: what works).
$s2 = moodle('manager::login_user(5); echo session_id();');
$after = moodle('manager::terminate_current(); echo session_id();', $s2);
$ids = ids(RSession\user_sessions(5));
var_dump(in_array($s2, $ids, true), in_array($after, $ids, true), in_array($s1, $ids, true));
echo moodle('var_dump($_SESSION["USER"]->id);', $after);
?>
--EXPECT--
bool(true)
array(0) {
}
bool(true)
bool(true)
int(7280)
bool(true)
bool(false)
array(2) {
  [0]=>
  string(4) "done"
  [1]=>
  string(4) "done"
}
int(5)
int(40)
array(0) {
}
bool(true)
array(0) {
}
bool(false)
bool(true)
bool(true)
int(0)
