--TEST--
Moodle recipe: kill_user_sessions() with a kept session, a kill while a request holds the session, kill_all_sessions() from CLI, Moodle 4.4's entry points, READ_ONLY_SESSION pages that never wait
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('moodle_kills');
ini_set('session.save_path', $save);
$sig = signal_dir('moodle_kills');
$env = ['MOODLE_DB' => "$sig/sessions.json", 'MOODLE_SAVE_PATH' => $save, 'MOODLE_DRIVER' => dirname(__DIR__, 3) . '/php/moodle/rsession.php'];
$inc = var_export(__DIR__ . '/moodle.inc', true);

function moodle_code(string $code, ?string $cookie = null, bool $lock = true): string
{
    global $inc;
    return "require $inc; use core\\session\\manager;
        manager::start(" . var_export($cookie, true) . ', ' . var_export($lock, true) . ");
        $code
        manager::write_close();
        echo ob_get_clean();";
}

function moodle(string $code, ?string $cookie = null, bool $lock = true): string
{
    global $save, $env;
    return run_child($save, moodle_code($code, $cookie, $lock), [], $env);
}

/** The Moodle user a request with this cookie finds (0: logged out). */
function user_of(string $sid): string
{
    return moodle('echo $_SESSION["USER"]->id;', $sid);
}

$a = moodle('manager::login_user(5); echo session_id();');
$b = moodle('manager::login_user(5); echo session_id();');
$c = moodle('manager::login_user(5); echo session_id();');
$other = moodle('manager::login_user(6); echo session_id();');
var_dump(count(RSession\user_sessions(5)));

// kill_user_sessions(5, keep $a), run by an administrator's request.
echo moodle("manager::kill_user_sessions(5, " . var_export($a, true) . "); echo 'killed';", $other), "\n";
var_dump(user_of($a), user_of($b), user_of($c), user_of($other));
var_dump(ids(RSession\user_sessions(5)) === [$a]);

// A READ_ONLY_SESSION page does not wait while a request holds the session,
// and what it changes is not written; a kill while the session is held
// returns at once and sticks: the holder's write is refused.
$holder = start_child($save, moodle_code("
    touch('$sig/held');
    for (\$i = 0; \$i < 1000 && !file_exists('$sig/go'); \$i++) { usleep(10000); }
    \$_SESSION['SESSION']->late = 1;", $a), [], $env);
wait_for_file("$sig/held");
$t = microtime(true);
echo moodle('echo $_SESSION["USER"]->id; $_SESSION["SESSION"]->ro = 1;', $a, false), "\n";
var_dump(microtime(true) - $t < 5 * slow());
// A request that gives up waiting (acquire_lock_timeout 1 s) gets Moodle's
// error, and writes nothing.
$late = "require $inc; try { core\\session\\manager::start(" . var_export($a, true) . "); echo 'started'; }
    catch (core\\session\\exception \$e) { echo \$e->getMessage(); }
    \$_SESSION['SESSION'] = new stdClass(); core\\session\\manager::write_close(); echo ob_get_clean();";
echo preg_replace('/ in \S+ on line \d+/', '', run_child($save, $late, [], $env + ['MOODLE_LOCK_TIMEOUT' => '1'])), "\n";
$t = microtime(true);
echo moodle("manager::kill_session(" . var_export($a, true) . "); echo 'killed';", $other), "\n";
var_dump(microtime(true) - $t < 5 * slow());
touch("$sig/go");
echo preg_replace('/ in \S+ on line \d+/', '', finish_child($holder)), "\n";
var_dump(user_of($a));

// Moodle 4.4 and older call kill_session() / kill_all_sessions() on the handler.
$d = moodle('manager::login_user(7); echo session_id();');
echo moodle("var_dump(manager::\$handler->kill_session(" . var_export($d, true) . "));", $other);
var_dump(user_of($d));

// kill_all_sessions() from CLI (no session started): every session ends.
echo run_child($save, "require $inc; core\\session\\manager::kill_all_sessions(); echo 'all killed';", [], $env), "\n";
var_dump(user_of($other), RSession\user_sessions(6));

// A missing save path is Moodle's own "session handler problem".
echo run_child($save, "require $inc; \$CFG->session_rsession_save_path = '';
    try { core\\session\\manager::start(); } catch (core\\session\\exception \$e) { echo \$e->getMessage(); }", [], $env), "\n";
?>
--EXPECTF--
int(3)
killed
string(1) "5"
string(1) "0"
string(1) "0"
string(1) "6"
bool(true)
5
bool(true)

Warning: session_start(): rsession: gave up waiting for the lock on session %s after %d ms; held by pid %d on host %s for %d ms (uri %s)

Warning: session_start(): Failed to read session data: rsession (path: %s)
servererror
killed
bool(true)

Notice: session_write_close(): rsession: session %s: the session was killed (or destroyed) while this request used it; its changes were not saved

string(1) "0"
bool(true)
string(1) "0"
all killed
string(1) "0"
array(0) {
}
sessionhandlerproblem ($CFG->session_rsession_save_path must be specified in config.php)
