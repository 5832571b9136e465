--TEST--
write-through memcached|pgsql: the cache killed mid-loop and restarted empty: no increment lost, warnings only while it is down, the cache used again after
--CONFLICTS--
write-through
--FILE--
<?php
require __DIR__ . '/setup.inc';
$port = free_port();
$pidFile = start_private_memcached($port);
[$path, $store] = wt_paths('restart', $port);
$dir = fresh_dir('wt-restart');
$children = start_incrementers($path, 'wtrestart1', 8, 40, $dir, [], 10000);
$down = $up = null;
while_running($children, function (float $t) use (&$down, &$up, &$pidFile, $port) {
    if ($down === null && $t > 0.3) {
        $down = microtime(true);
        stop_private_memcached($pidFile);
    } elseif ($down !== null && $up === null && microtime(true) - $down > 1.0) {
        $pidFile = start_private_memcached($port);
        $up = microtime(true);
    }
});
[$ok, $fail, $all] = finish_incrementers($children);
var_dump($all, $down !== null && $up !== null);
echo "written $ok, stored ", stored_count($store, 'wtrestart1'), "\n";
$w = child_warnings($dir);
$outage = array_filter($w, fn($x) => str_contains($x[1], 'cache does not answer'));
var_dump(count($outage) >= 1);
// Every warning came while the cache was down, or within the time a
// process leaves a failed server alone (memcached's 5 s, our 1 s retry).
$late = array_filter($w, fn($x) => $x[0] < $down || $x[0] > $up + 7 * slow());
var_dump(array_values($late));
// The cache serves again, what the store holds.
var_dump(stored_count($path, 'wtrestart1') === $ok);
stop_private_memcached($pidFile);
?>
--EXPECT--
bool(true)
bool(true)
written 320, stored 320
bool(true)
array(0) {
}
bool(true)
