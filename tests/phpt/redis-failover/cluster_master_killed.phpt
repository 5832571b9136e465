--TEST--
Redis Cluster: under a loop of locked increments (wait_replicas=1), a master handed over (CLUSTER FAILOVER: MOVED from the demoted one followed), then a master SIGKILLed (warnings while its replica takes over and until the killed node is back as its replica), each time recovery without restarting PHP; every increment that succeeded is kept, no hang, no crash
--FILE--
<?php
require __DIR__ . '/setup.inc';
$url = env_or_fail('RSESSION_TEST_REDIS_CLUSTER');
$dir = env_or_fail('RSESSION_TEST_REDIS_CLUSTER_DIR');
$path = redis_with($url, 'prefix=phpt-failover:' . getmypid() . ':&wait_replicas=1');
$ids = array_merge(...cluster_ids_on_every_master($url, 'failover' . getmypid() . 'x', 1));
$signals = fresh_dir('failover-cluster');
$children = start_loops(4, $ids, $path, $signals);
pause(1);

// 1. A replica takes over from its master, by agreement: nothing is lost
// even unreplicated, and the old master answers MOVED.
$replicaOf = function (int $port) use ($url): ?int {
    foreach (explode("\n", (string) resp_call('127.0.0.1', redis_url_parts($url)['hosts'][0][1], ['CLUSTER', 'NODES'])) as $line) {
        $f = explode(' ', $line);
        if (count($f) > 3 && str_contains($f[2], 'slave') && $f[3] === cluster_node_id($port)) {
            return (int) explode('@', explode(':', $f[1])[1])[0];
        }
    }
    return null;
};
$masters = cluster_masters($url);
$slot = $masters[0][2][0][0];
$old = $masters[0][1];
$new = $replicaOf($old);
begin_phase($signals, 1, 'handover');
echo 'handed over: ', var_export(resp_call('127.0.0.1', $new, ['CLUSTER', 'FAILOVER']) === 'OK'
    && wait_until(fn() => slot_owner($url, $slot) === $new, 20) !== false, true), "\n";
pause(1.5);

// 2. A master killed: its replica is promoted once the cluster sees it fail.
$masters = cluster_masters($url);
[, $victim] = $masters[0];
$slot = $masters[0][2][0][0];
kill_server($dir, $victim);
$promoted = wait_until(fn() => slot_owner($url, $slot, $victim) !== $victim, 20);
echo 'promoted: ', var_export($promoted !== false, true), "\n";
// The killed node comes back as the new master's replica: from then on
// WAIT 1 is met again.
restart_server($dir, $victim);
echo 'back as a replica: ', var_export(wait_until(fn() => replica_linked($victim), 20) !== false, true), "\n";
begin_phase($signals, 2, 'recovery');
pause(2);
touch("$signals/stop");
elapsed();
$sum = collect_loops($children, $ids, $path);
ended_promptly($sum, 10 * slow());
judge_loops($sum, $ids, ['phase-1-handover', 'phase-2-recovery']);
?>
--EXPECT--
handed over: true
promoted: true
back as a replica: true
loops ended promptly: true
session 0: nothing lost, nothing extra, ok in phase-1-handover, ok in phase-2-recovery
session 1: nothing lost, nothing extra, ok in phase-1-handover, ok in phase-2-recovery
session 2: nothing lost, nothing extra, ok in phase-1-handover, ok in phase-2-recovery
messages without rsession: []
