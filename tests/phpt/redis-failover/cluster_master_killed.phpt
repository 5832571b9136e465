--TEST--
Redis Cluster: a master SIGKILLed under a loop of locked increments (wait_replicas=1): warnings while its replica takes over and until the killed node is back as its replica, then recovery without restarting PHP; every increment that succeeded is kept, no hang, no crash
--FILE--
<?php
require __DIR__ . '/setup.inc';
$url = env_or_fail('RSESSION_TEST_REDIS_CLUSTER');
$dir = env_or_fail('RSESSION_TEST_REDIS_CLUSTER_DIR');
$path = redis_with($url, 'prefix=phpt-failover:' . getmypid() . ':&wait_replicas=1');
$ids = array_merge(...cluster_ids_on_every_master($url, 'failover' . getmypid() . 'x', 1));
$masters = cluster_masters($url);
[$host, $victim] = $masters[0];
$slot = $masters[0][2][0][0];
$signals = fresh_dir('failover-cluster');
$children = start_loops(4, $ids, $path, $signals);
pause(1);
kill_server($dir, $victim);
// Asked of a survivor: the victim's slots get a new master.
$other = $masters[1][1];
$promoted = wait_until(function () use ($other, $slot, $victim) {
    foreach (resp_call('127.0.0.1', $other, ['CLUSTER', 'SLOTS']) as $r) {
        if ($slot >= $r[0] && $slot <= $r[1]) {
            return $r[2][1] !== $victim;
        }
    }
    return false;
}, 20);
echo 'promoted: ', var_export($promoted !== false, true), "\n";
// The killed node comes back as the new master's replica: from then on
// WAIT 1 is met again.
restart_server($dir, $victim);
echo 'back as a replica: ', var_export(wait_until(fn() => replica_linked($victim), 20) !== false, true), "\n";
touch("$signals/promoted");
pause(2);
touch("$signals/stop");
elapsed();
$sum = collect_loops($children, $ids, $path);
echo 'loops ended promptly: ', var_export(elapsed() < 10 * slow(), true), "\n";
judge_loops($sum, $ids);
?>
--EXPECT--
promoted: true
back as a replica: true
loops ended promptly: true
session 0: nothing lost, nothing extra, recovered
session 1: nothing lost, nothing extra, recovered
session 2: nothing lost, nothing extra, recovered
messages without rsession: []
