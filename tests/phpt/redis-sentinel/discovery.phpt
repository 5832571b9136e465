--TEST--
Redis Sentinel: the master is asked of the sentinels (a dead one skipped); a wrong master name or password is a clear rsession: warning, never a hang
--FILE--
<?php
require __DIR__ . '/setup.inc';
ini_set('session.save_handler', 'rsession');
ini_set('session.use_strict_mode', '0');
$messages = [];
set_error_handler(function ($no, $msg) use (&$messages) {
    $messages[] = preg_replace('/^session_start\(\): /', '', $msg);
    return true;
});
function cycle(string $path, ?string $set = null): string
{
    session_save_path($path);
    session_id('sentineldiscovery1');
    if (!session_start()) {
        return 'start failed';
    }
    $v = $_SESSION['v'] ?? '-';
    if ($set !== null) {
        $_SESSION['v'] = $set;
    }
    session_write_close();
    return $v;
}
$url = redis_with(sentinel_url(), 'prefix=phpt-sentinel:' . getmypid() . ':&connect_timeout_ms=300');
// A sentinel that is down, listed first: the next one answers.
$dead = preg_replace('/@/', '@127.0.0.1:1,', $url, 1);
echo 'dead sentinel first: ', cycle($dead, 'stored'), ' ', cycle($url), "\n";
// The master it names holds the session.
[$h, $p] = sentinel_master($url);
$key = redis_prefix($url) . '{sentineldiscovery1}:s';
echo 'on the master: ', resp_call($h, $p, ['EXISTS', $key], redis_url_parts($url)['password']), "\n";
echo 'lock_info: ', var_export(RSession\lock_info('sentineldiscovery1'), true), "\n";
$messages = [];
$t = microtime(true);
foreach ([
    'unknown master' => str_replace('/rsession?', '/nosuchmaster?', $url),
    'wrong sentinel password' => str_replace('sentinel_password=', 'sentinel_password=x', $url),
    'wrong data password' => preg_replace('#://:[^@]*@#', '://:wrong@', $url),
    'no sentinel up' => preg_replace('#@[^/]*/#', '@127.0.0.1:1,127.0.0.1:2/', $url),
] as $what => $path) {
    echo "$what: ", cycle($path), "\n";
}
var_dump(microtime(true) - $t < 5 * slow());
foreach ($messages as $m) {
    if (str_starts_with($m, 'rsession:')) {
        echo preg_replace(['/127\.0\.0\.1:\d+/', '/\(os error \d+\)/'], ['HOST', ''], $m), "\n";
    }
}
?>
--EXPECTF--
dead sentinel first: - stored
on the master: 1
lock_info: NULL
unknown master: start failed
wrong sentinel password: start failed
wrong data password: start failed
no sentinel up: start failed
bool(true)
rsession: redis store: sentinel master nosuchmaster: cannot connect: no sentinel named the master (last: sentinel HOST: sentinel HOST knows no master named "nosuchmaster")
rsession: redis store: sentinel master rsession: cannot connect: no sentinel named the master (last: sentinel HOST: WRONGPASS %s)
rsession: redis store: HOST: cannot connect: WRONGPASS %s
rsession: redis store: sentinel master rsession: cannot connect: no sentinel named the master (last: sentinel HOST: Connection refused )
