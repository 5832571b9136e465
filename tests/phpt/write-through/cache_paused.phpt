--TEST--
write-through memcached|pgsql: the cache frozen mid-loop (SIGSTOP) and resumed with its old copies and locks: writes go to the store meanwhile, the old copies are never served, no increment lost
--CONFLICTS--
write-through
--FILE--
<?php
require __DIR__ . '/setup.inc';
$port = free_port();
$pidFile = start_private_memcached($port);
$pid = (int) file_get_contents($pidFile);
[$path, $store] = wt_paths('paused', $port);
$dir = fresh_dir('wt-paused');
// A short lease: the locks frozen in the cache free themselves soon after.
$children = start_incrementers($path, 'wtpaused1', 8, 40, $dir, ['rsession.lock_ttl_ms' => 2000], 10000);
$stopped = $resumed = null;
while_running($children, function (float $t) use (&$stopped, &$resumed, $pid) {
    if ($stopped === null && $t > 0.3) {
        exec("kill -STOP $pid");
        $stopped = microtime(true);
    } elseif ($stopped !== null && $resumed === null && microtime(true) - $stopped > 1.0) {
        exec("kill -CONT $pid");
        $resumed = microtime(true);
    }
});
if ($resumed === null) exec("kill -CONT $pid");
[$ok, $fail, $all] = finish_incrementers($children);
var_dump($all, $resumed !== null);
echo "written $ok, stored ", stored_count($store, 'wtpaused1'), "\n";
var_dump(count(array_filter(child_warnings($dir), fn($x) => str_contains($x[1], 'cache does not answer'))) >= 1);
var_dump(stored_count($path, 'wtpaused1') === $ok);
stop_private_memcached($pidFile);
?>
--EXPECT--
bool(true)
bool(true)
written 320, stored 320
bool(true)
bool(true)
