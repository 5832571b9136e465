--TEST--
Redis Cluster: a session's slot migrated to another master (MIGRATING/IMPORTING, key by key) and back, under a loop of locked increments: ASK followed, TRYAGAIN waited out, MOVED followed; nothing lost, nothing failed
--FILE--
<?php
require __DIR__ . '/setup.inc';
$path = cluster_path('migrate', 'timeout_ms=' . 2000 * slow());
$url = cluster_url();
$id = 'clustermigrate' . getmypid();   // no keys of earlier runs in its slot
$dir = fresh_dir('cluster-migrate');
// Two processes increment the session until told to stop; each counts
// what it saw succeed (session_write_close() is true even when the write
// failed: a warning says so) and every message it got.
$children = [];
for ($c = 0; $c < 2; $c++) {
    $children[] = start_child("
        \$ok = 0; \$failed = 0; \$messages = [];
        set_error_handler(function (\$no, \$msg) use (&\$messages) { \$messages[] = \$msg; return true; });
        while (!file_exists('$dir/stop')) {
            session_id('$id');
            if (!session_start()) { \$failed++; continue; }
            \$_SESSION['n'] = (\$_SESSION['n'] ?? 0) + 1;
            \$before = count(\$messages);
            session_write_close() && count(\$messages) === \$before ? \$ok++ : \$failed++;
        }
        echo json_encode(['ok' => \$ok, 'failed' => \$failed, 'messages' => \$messages]);", ['session.save_path' => $path]);
}
usleep(200000);
$masters = cluster_masters($url);
$slot = cluster_slot($url, $id);
$home = cluster_master_of($masters, $slot);
$away = ($home + 1) % count($masters);
$there = cluster_move_slot($slot, array_slice($masters[$home], 0, 2), array_slice($masters[$away], 0, 2), 40);
usleep(200000);
$moved = cluster_master_of(cluster_masters($url), $slot) === $away;
$back = cluster_move_slot($slot, array_slice($masters[$away], 0, 2), array_slice($masters[$home], 0, 2), 40);
usleep(200000);
touch("$dir/stop");
$results = array_map(fn($c) => json_decode(finish_child($c), true), $children);
// (Keys of this id left by earlier runs, under other prefixes, move too.)
echo "moved there and back, keys and all: ", var_export($moved && $there > 0 && $back > 0, true), "\n";
$ok = array_sum(array_column($results, 'ok'));
echo "failed: ", array_sum(array_column($results, 'failed')), ", messages: ", json_encode(array_merge(...array_column($results, 'messages'))), "\n";
ini_set('session.save_handler', 'rsession');
session_save_path($path);
session_id($id);
session_start();
echo $_SESSION['n'] === $ok ? "stored = succeeded\n" : "stored {$_SESSION['n']}, succeeded $ok\n";
var_dump($ok > 20);
session_destroy();
?>
--EXPECT--
moved there and back, keys and all: true
failed: 0, messages: []
stored = succeeded
bool(true)
