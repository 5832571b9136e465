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
// goes on taking writes until it is made a replica (here 4 s later, by
// hand: the sentinels would get to it at their next 10 s check), and then
// answers them with READONLY. Its WAITs fall short from the handover on,
// so the loops ask the sentinels again and move to the new master at
// once: the counts the old one holds stop moving. Locks it granted
// meanwhile are lost with it, and releases it took are lost with their
// locks still on the new master: the holders (warned by WAIT) free them
// there.
[, $old] = sentinel_master($url);
begin_phase($signals, 1, 'handover');
$asked = resp_call('127.0.0.1', $sentinel, ['SENTINEL', 'FAILOVER', 'rsession'], $spw) === 'OK';
$moved = $asked && wait_until(fn() => sentinel_master($url)[1] !== $old, 20) !== false;
[$newHost, $newPort] = sentinel_master($url);
// A request in flight at the handover may still write there (its WAIT
// takes up to timeout_ms): the counts are compared after that.
pause(2.5);
$prefix = 'phpt-failover:' . getmypid() . ':';
$count = fn(string $id) => preg_match('/n\|i:(\d+);/', (string) resp_call('127.0.0.1', $old, ['HGET', "$prefix{{$id}}:s", 'd'], $u['password']), $m) ? (int) $m[1] : -1;
$before = array_map($count, $ids);
pause(1.5);
echo 'old master left at once: ', var_export($before === array_map($count, $ids) && min($before) > 0, true), "\n";
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
// A lock left behind by the loops holds up the fresh read that follows:
// its time to live shows in the dump.
$sum = collect_loops($children, $ids, $path, fn(string $id) => resp_call('127.0.0.1', sentinel_master($url)[1], ['PTTL', "$prefix{{$id}}:l"], $u['password']));
ended_promptly($sum, 25 * slow());
judge_loops($sum, $ids, ['phase-1-handover', 'phase-2-recovery']);
?>
--EXPECT--
sentinels ready: true
old master left at once: true
handed over: true
promoted: true
back as a replica: true
loops ended promptly: true
session 0: nothing lost, nothing extra, ok in phase-1-handover, ok in phase-2-recovery
session 1: nothing lost, nothing extra, ok in phase-1-handover, ok in phase-2-recovery
messages without rsession: []
