--TEST--
Laravel recipe: RSession\Handler as a Session::extend() driver under a stand-in of Laravel's Store: locked requests lose no update, the Login listener files the new id, regenerate() and invalidate() as the README says
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('laravel');
ini_set('session.save_path', $save);
// As in any Laravel request once the session driver is built (the factory sets it).
ini_set('session.gc_maxlifetime', '7200');
$env = ['LARAVEL_SAVE_PATH' => $save];
$inc = var_export(__DIR__ . '/laravel.inc', true);

/** One request: $code runs on $s, the session StartSession started for $cookie. */
function laravel_code(string $code, ?string $cookie): string
{
    global $inc;
    return "require $inc; \$s = laravel_session(" . var_export($cookie, true) . "); $code \$s->save(); echo ob_get_clean();";
}

function laravel(string $code, ?string $cookie = null): string
{
    global $save, $env;
    return run_child($save, laravel_code($code, $cookie), [], $env);
}

function exists(string $id): bool
{
    global $save;
    return (new RSession\Handler($save))->validateId($id);
}

$v = laravel('$s->put("cart", [1]); echo $s->getId();');
echo laravel('echo json_encode($s->get("cart"));', $v), "\n";

// Concurrent requests of one browser run one after the other.
$loop = "require $inc; for (\$i = 0; \$i < 20; \$i++) {
    \$s = laravel_session('$v'); \$n = \$s->get('n', 0); usleep(300); \$s->put('n', \$n + 1); \$s->save();
} echo 'done';";
$tabs = [start_child($save, $loop, [], $env), start_child($save, $loop, [], $env)];
var_dump(array_map('finish_child', $tabs));
echo laravel('echo $s->get("n");', $v), "\n";

// Login: migrate(true), then the listener files the new id under the user
// with Laravel's lifetime as its timeout; the old id is gone.
$l = laravel('laravel_login($s, 42); echo $s->getId();', $v);
$list = RSession\user_sessions(42);
var_dump(ids($list) === [$l], $list[0]['timeout'], exists($v));
echo laravel('echo json_encode([$s->get("cart"), $s->get("login_web")]);', $l), "\n";
$remembered = laravel('laravel_login($s, 43, true); echo $s->getId();');
var_dump(RSession\user_sessions(43)[0]['timeout']);

// regenerate() elsewhere: Laravel writes the new id without reading it, so
// rsession cannot tell it continues the session: it belongs to nobody until
// the listener's two calls run for it (the README says so).
$r = laravel('$s->regenerate(); echo $s->getId();', $l);
$ids = ids(RSession\user_sessions(42));
var_dump(in_array($r, $ids, true), in_array($l, $ids, true));
$r2 = laravel('$s->regenerate(true); rsession_laravel_login($s, 42); echo $s->getId();', $r);
var_dump(in_array($r2, ids(RSession\user_sessions(42)), true), exists($r));

// A listener that skips the read(): after migrate(true) its setUser() waits
// for the new id (written next, without a read) and never brings back the
// destroyed old one.
$m = laravel('$s->put("m", 1); echo $s->getId();');
$m2 = laravel('$s->migrate(true); $s->getHandler()->setUser(44); echo $s->getId();', $m);
var_dump(ids(RSession\user_sessions(44)) === [$m2], exists($m));

// Logout: invalidate() ends the old id; the new session is nobody's.
$out = laravel('$s->invalidate(); echo $s->getId();', $r2);
$ids = ids(RSession\user_sessions(42));
var_dump(in_array($out, $ids, true), in_array($r2, $ids, true), exists($r2));

// A request that gives up waiting for the lock (here after 200 ms) goes on
// read-only: what it changes is dropped with a notice, the holder's data stays.
$sig = signal_dir('laravel');
$w = laravel('$s->put("n", 40); echo $s->getId();');
$holder = start_child($save, laravel_code("touch('$sig/held');
    for (\$i = 0; \$i < 1000 && !file_exists('$sig/go'); \$i++) { usleep(10000); }
    \$s->put('n', 100);", $w), [], $env);
wait_for_file("$sig/held");
echo preg_replace('/ in \S+ on line \d+/', '', run_child($save, laravel_code('echo $s->get("n"), "\n"; $s->put("n", -1);', $w), ['rsession.lock_wait_ms' => '200'], $env)), "\n";
touch("$sig/go");
finish_child($holder);
echo laravel('echo $s->get("n");', $w), "\n";

// An administrator ends user 42's sessions: its next request is logged out.
$l2 = laravel('laravel_login($s, 42); echo $s->getId();');
var_dump(RSession\kill_user_sessions(42) >= 1);
echo laravel('var_dump($s->get("login_web"));', $l2);
?>
--EXPECTF--
[1]
array(2) {
  [0]=>
  string(4) "done"
  [1]=>
  string(4) "done"
}
40
bool(true)
int(7200)
bool(false)
[[1],42]
int(0)
bool(false)
bool(true)
bool(true)
bool(false)
bool(true)
bool(false)
bool(false)
bool(false)
bool(false)

Notice: RSession\Handler::read(): rsession: gave up waiting for the lock on session %s after %d ms; held by pid %d on host %s for %d ms (uri %s); the session is read-only for this request
40

Notice: RSession\Handler::write(): rsession: session %s was opened read-only; the changes made to $_SESSION were not saved

100
bool(true)
NULL
