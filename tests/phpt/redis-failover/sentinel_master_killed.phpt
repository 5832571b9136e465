--TEST--
Redis Sentinel: under a loop of locked increments (wait_replicas=1), a failover by SENTINEL FAILOVER (READONLY from the demoted master: the sentinels asked again), then the master SIGKILLed (warnings while its replica is promoted and until the killed node is back as its replica), each time recovery without restarting PHP; every increment that succeeded is kept, no hang, no crash
--FILE--
<?php
require __DIR__ . '/setup.inc';
$url = env_or_fail('RSESSION_TEST_REDIS_SENTINEL');
$dir = env_or_fail('RSESSION_TEST_REDIS_SENTINEL_DIR');
$u = redis_url_parts($url);
$path = redis_with($url, 'prefix=phpt-failover:' . getmypid() . ':&wait_replicas=1');
$ids = ['sentinelfailover' . getmypid() . 'a', 'sentinelfailover' . getmypid() . 'b'];
// The sentinels must know the replica and each other before a failover.
$sentinel = $u['hosts'][0][1];
$spw = $u['query']['sentinel_password'];
$ready = wait_until(function () use ($sentinel, $spw) {
    $replicas = resp_call('127.0.0.1', $sentinel, ['SENTINEL', 'replicas', 'rsession'], $spw);
    $peers = resp_call('127.0.0.1', $sentinel, ['SENTINEL', 'sentinels', 'rsession'], $spw);
    return is_array($replicas) && count($replicas) >= 1 && is_array($peers) && count($peers) >= 2;
}, 20);
echo 'sentinels ready: ', var_export($ready !== false, true), "\n";
$signals = fresh_dir('failover-sentinel');
$children = start_loops(4, $ids, $path, $signals);
pause(1);

// 1. The sentinels hand the master's role to its replica. The old master
// goes on taking writes until it is made a replica (here 2 s later, by
// hand: the sentinels would get to it at their next 10 s check), and then
// answers them with READONLY. Releases it took meanwhile are lost with
// their locks still on the new master: the holders (warned by WAIT) free
// them there once READONLY has shown them the way.
[, $old] = sentinel_master($url);
begin_phase($signals, 1, 'handover');
$asked = resp_call('127.0.0.1', $sentinel, ['SENTINEL', 'FAILOVER', 'rsession'], $spw) === 'OK';
$moved = $asked && wait_until(fn() => sentinel_master($url)[1] !== $old, 20) !== false;
[$newHost, $newPort] = sentinel_master($url);
pause(2);
resp_call('127.0.0.1', $old, ['REPLICAOF', $newHost, $newPort], $u['password']);
echo 'handed over: ', var_export($moved && wait_until(fn() => replica_linked($old, $u['password']), 20) !== false, true), "\n";
pause(1.5);

// 2. The master killed.
[, $victim] = sentinel_master($url);
kill_server($dir, $victim);
$promoted = wait_until(fn() => sentinel_master($url)[1] !== $victim, 20);
echo 'promoted: ', var_export($promoted !== false, true), "\n";
// Started again as the new master's replica (as an operator replacing it
// would: the sentinels would only get to it at their next 10 s check);
// from then on WAIT 1 is met again.
[$newHost, $newPort] = sentinel_master($url);
restart_server($dir, $victim, ['--replicaof', $newHost, (string) $newPort]);
echo 'back as a replica: ', var_export(wait_until(fn() => replica_linked($victim, $u['password']), 30) !== false, true), "\n";
begin_phase($signals, 2, 'recovery');
pause(2);
touch("$signals/stop");
elapsed();
$sum = collect_loops($children, $ids, $path);
echo 'loops ended promptly: ', var_export(elapsed() < 25 * slow(), true), "\n";
judge_loops($sum, $ids, ['phase-1-handover', 'phase-2-recovery']);
?>
--EXPECT--
sentinels ready: true
handed over: true
promoted: true
back as a replica: true
loops ended promptly: true
session 0: nothing lost, nothing extra, ok in phase-1-handover, ok in phase-2-recovery
session 1: nothing lost, nothing extra, ok in phase-1-handover, ok in phase-2-recovery
messages without rsession: []
