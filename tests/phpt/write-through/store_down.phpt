--TEST--
write-through memcached|pgsql: the store stopped mid-loop: writes fail loudly (an rsession: warning, PHP's write failure), nothing half-written (the cache never keeps what the store lacks), every increment lands after the restart
--CONFLICTS--
write-through
--FILE--
<?php
require __DIR__ . '/setup.inc';
$ctl = getenv('RSESSION_TEST_PGSQL_CTL') ?: throw new RuntimeException('RSESSION_TEST_PGSQL_CTL is not set: run via make test');
$port = free_port();
$pidFile = start_private_memcached($port);
[$path, $store] = wt_paths('storedown', $port);
$dir = fresh_dir('wt-storedown');
$children = start_incrementers($path, 'wtstoredown1', 8, 40, $dir, [], 10000);
$stopped = $started = false;
while_running($children, function (float $t) use (&$stopped, &$started, $ctl) {
    if (!$stopped && $t > 0.5) {
        exec("$ctl stop-pgsql");
        $stopped = true;
        usleep(1000000);
        exec("$ctl start-pgsql");
        $started = true;
    }
});
[$ok, $fail, $all] = finish_incrementers($children);
var_dump($all, $stopped && $started, $fail > 0);
echo "written $ok, stored ", stored_count($store, 'wtstoredown1'), "\n";
$w = array_column(child_warnings($dir), 1);
var_dump(count(array_filter($w, fn($m) => str_starts_with($m, 'session_write_close(): rsession: pgsql store'))) > 0);
var_dump(count(array_filter($w, fn($m) => str_contains($m, 'Failed to write session data'))) === $fail);
var_dump(stored_count($path, 'wtstoredown1') === $ok);
stop_private_memcached($pidFile);
?>
--EXPECT--
bool(true)
bool(true)
bool(true)
written 320, stored 320
bool(true)
bool(true)
bool(true)
