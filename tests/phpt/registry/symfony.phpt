--TEST--
Symfony recipe: the native handler (handler_id: null) through Symfony's proxy and strict handler: locked requests lose no update, set_user() after login follows later migrate()s, kills, and what logout leaves
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('symfony');
ini_set('session.save_path', $save);
ini_set('session.gc_maxlifetime', '7200');
$inc = var_export(__DIR__ . '/symfony.inc', true);

/** One request: $code runs on $s, the session for $cookie; Symfony saves it at the end. */
function symfony_code(string $code, ?string $cookie): string
{
    global $inc;
    return "require $inc; \$s = symfony_session(" . var_export($cookie, true) . "); $code \$s->save(); echo ob_get_clean();";
}

function symfony(string $code, ?string $cookie = null): string
{
    global $save;
    return run_child($save, symfony_code($code, $cookie));
}

$v = symfony('$s->set("cart", [1]); echo $s->getId();');
echo symfony('echo json_encode($s->get("cart")), " ", $s->getId() === ' . var_export($v, true) . ' ? "same id" : "new id";', $v), "\n";
// Strict mode: an id the store does not know is not adopted.
echo symfony('$s->start(); echo $s->getId() === "madeup0123456789abcdef" ? "adopted" : "replaced";', 'madeup0123456789abcdef'), "\n";

// Concurrent requests of one browser run one after the other.
$loop = "require $inc; for (\$i = 0; \$i < 20; \$i++) {
    \$s = symfony_session('$v'); \$n = \$s->get('n', 0); usleep(300); \$s->set('n', \$n + 1); \$s->save();
} echo 'done';";
$tabs = [start_child($save, $loop), start_child($save, $loop)];
var_dump(array_map('finish_child', $tabs));
echo symfony('echo $s->get("n");', $v), "\n";

// A request that gives up waiting for the lock (here after 200 ms) goes on
// read-only: what it changes is dropped with a notice, the holder's data stays.
$sig = signal_dir('symfony');
$holder = start_child($save, symfony_code("\$s->start(); touch('$sig/held');
    for (\$i = 0; \$i < 1000 && !file_exists('$sig/go'); \$i++) { usleep(10000); }
    \$s->set('n', 100);", $v));
wait_for_file("$sig/held");
echo preg_replace('/ in \S+ on line \d+/', '', run_child($save, symfony_code('echo $s->get("n"), "\n"; $s->set("n", -1);', $v), ['rsession.lock_wait_ms' => '200'])), "\n";
touch("$sig/go");
finish_child($holder);
echo symfony('echo $s->get("n");', $v), "\n";

// Login: Symfony migrates the session, the app ties it to the user (before
// or after the migrate: set_user() follows session_regenerate_id()).
$l = symfony('$s->start(); RSession\set_user("alice"); $s->migrate(true); $s->set("_security_main", "token"); echo $s->getId();', $v);
var_dump(ids(RSession\user_sessions('alice')) === [$l], $l !== $v);
echo symfony('echo json_encode([$s->get("cart"), $s->get("_security_main")]);', $l), "\n";
// A later migrate (privilege change): the user and timeout follow.
$m = symfony('$s->start(); RSession\set_timeout(0); $s->migrate(true); echo $s->getId();', $l);
$list = RSession\user_sessions('alice');
var_dump(ids($list) === [$m], $list[0]['timeout']);

// An administrator ends alice's sessions: the next request is logged out.
var_dump(RSession\kill_user_sessions('alice'));
echo symfony('var_dump($s->get("_security_main"));', $m);

// Logout: invalidate() is session_regenerate_id(true) on a cleared session,
// so the fresh session still belongs to alice (README: what works).
$l2 = symfony('$s->start(); RSession\set_user("alice"); $s->migrate(true); $s->set("_security_main", "t"); echo $s->getId();');
$out = symfony('$s->start(); $s->invalidate(); $s->set("flash", "logged out"); echo $s->getId();', $l2);
var_dump(ids(RSession\user_sessions('alice')) === [$out]);
echo symfony('echo json_encode([$s->get("_security_main"), $s->get("flash")]);', $out), "\n";
?>
--EXPECTF--
[1] same id
replaced
array(2) {
  [0]=>
  string(4) "done"
  [1]=>
  string(4) "done"
}
40

Notice: SessionHandler::read(): rsession: gave up waiting for the lock on session %s after %d ms; held by pid %d on host %s for %d ms (uri %s); the session is read-only for this request
40

Notice: SessionHandler::write(): rsession: session %s was opened read-only; the changes made to $_SESSION were not saved

100
bool(true)
bool(true)
[[1],"token"]
bool(true)
int(0)
int(1)
NULL
bool(true)
[null,"logged out"]
