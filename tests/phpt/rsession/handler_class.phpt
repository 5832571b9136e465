--TEST--
RSession\Handler: round trip through session_set_save_handler, options, exceptions, reflection
--FILE--
<?php
require __DIR__ . '/setup.inc';
$dir = fresh_dir('handler_class');
$h = new RSession\Handler($dir, ['lock_wait_ms' => 50, 'locking' => true]);
var_dump($h instanceof SessionHandlerInterface, $h instanceof SessionIdInterface,
    $h instanceof SessionUpdateTimestampHandlerInterface);
var_dump(session_set_save_handler($h, true));
var_dump(session_start());
$id = session_id();
$_SESSION['bin'] = "x\0y";
var_dump(RSession\lock_info($id)['pid'] === getmypid());
session_write_close();
var_dump(RSession\lock_info($id));
session_start();
var_dump($_SESSION['bin'] === "x\0y");
session_destroy();
var_dump(file_exists("$dir/sess_$id"));

foreach ([['redis://h:0', []], [$dir, ['bogus' => 1]], [$dir, ['lock_failure' => 'maybe']], [$dir, ['lock_wait_ms' => []]]] as [$p, $o]) {
    try {
        new RSession\Handler($p, $o);
        echo "no exception\n";
    } catch (RSession\Exception $e) {
        echo get_class($e), ' (', $e instanceof RuntimeException ? 'RuntimeException' : '?', '): ', $e->getMessage(), "\n";
    }
}
$r = new ReflectionClass(RSession\Handler::class);
var_dump($r->isFinal());
echo $r->getMethod('read')->getReturnType(), ' ', $r->getMethod('gc')->getReturnType(), "\n";
var_dump($r->hasMethod('create_sid'), $r->hasMethod('validateId'), $r->hasMethod('updateTimestamp'));
?>
--EXPECTF--
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
bool(true)
NULL
bool(true)
bool(false)
RSession\Exception (RuntimeException): rsession: save_path "redis://h:0": port "0" is not a number between 1 and 65535
RSession\Exception (RuntimeException): rsession: option "bogus": unknown option; known: locking, lock_wait_ms, lock_ttl_ms, lock_failure, read_only, spin_us
RSession\Exception (RuntimeException): rsession: option "lock_failure": "maybe" is neither "fail" nor "readonly"
RSession\Exception (RuntimeException): rsession: option "lock_wait_ms": must be a bool, int or string
bool(true)
string|false int|false
bool(true)
bool(true)
bool(true)
