--TEST--
write-through memcached|pgsql: lock_info() names the member holding the lock (the cache, or the store during a cache outage) and phpinfo() names both members
--CONFLICTS--
write-through
--FILE--
<?php
require __DIR__ . '/setup.inc';
$port = free_port();
$pidFile = start_private_memcached($port);
[$path, $store] = wt_paths('info', $port);
ini_set('session.save_path', $path);
set_error_handler(function ($no, $m) { echo "warning: $m\n"; return true; });

function hold(string $path, string $dir, string $id): array
{
    $child = start_child('
        set_error_handler(fn() => true);
        session_id("' . $id . '");
        session_start();
        touch("' . $dir . '/holding");
        while (!file_exists("' . $dir . '/go")) usleep(5000);
        session_write_close();', ['session.save_path' => $path]);
    wait_for_file("$dir/holding");
    return $child;
}

$dir = fresh_dir('wt-info1');
$child = hold($path, $dir, 'wtinfo1');
$info = RSession\lock_info('wtinfo1');
echo "held in: ", $info['member'], ", pid known: ", var_export($info['pid'] > 0, true), "\n";
touch("$dir/go");
finish_child($child);
var_dump(RSession\lock_info('wtinfo1'));

ob_start();
phpinfo(INFO_MODULES);
$rows = array_filter(explode("\n", ob_get_clean()), fn($l) => str_starts_with($l, 'write-through'));
echo implode("\n", $rows), "\n";

// The cache down: the lock is the store's own.
stop_private_memcached($pidFile);
$dir = fresh_dir('wt-info2');
$child = hold($path, $dir, 'wtinfo2');
$info = RSession\lock_info('wtinfo2');
echo "held in: ", $info['member'], "\n";
touch("$dir/go");
finish_child($child);
?>
--EXPECTF--
held in: cache memcached, pid known: true
NULL
write-through cache => memcached
write-through store => pgsql
write-through lazy_touch_s => %d
%Awarning: RSession\lock_info(): rsession: %s
held in: store pgsql
