--TEST--
write-through memcached|pgsql: 8 processes x 40 locked increments with the cache flushed every 50 ms end at exactly 320 in the store
--CONFLICTS--
write-through
--FILE--
<?php
require __DIR__ . '/setup.inc';
$port = free_port();
$pid = start_private_memcached($port);
[$path, $store] = wt_paths('flush', $port);
$dir = fresh_dir('wt-flush');
$children = start_incrementers($path, 'wtflush1', 8, 40, $dir, [], 3000);
$flushes = 0;
// Flush while they run: every flush drops the locks and sessions the cache
// held; the store and the version fence must keep every increment.
$until = microtime(true) + 60 * slow();
while (microtime(true) < $until) {
    usleep(50000);
    flush_memcached($port);
    $flushes++;
    $running = 0;
    foreach ($children as [$p]) {
        $running += proc_get_status($p)['running'] ? 1 : 0;
    }
    if ($running === 0) break;
}
[$ok, $fail, $all] = finish_incrementers($children);
var_dump($all, $flushes > 3);
// Every write that reported success is in the store, and nothing else.
$n = stored_count($store, 'wtflush1');
echo "written $ok, stored $n\n";
// What the cache serves now agrees with the store.
var_dump(stored_count($path, "wtflush1") === $n);
stop_private_memcached($pid);
?>
--EXPECT--
bool(true)
bool(true)
written 320, stored 320
bool(true)
