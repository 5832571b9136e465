--TEST--
Redis Cluster: 8 processes x 40 locked increments over sessions on all three masters end exact, 320 in all
--FILE--
<?php
require __DIR__ . '/setup.inc';
$path = cluster_path('increments');
// One session on each master.
$ids = array_merge(...cluster_ids_on_every_master(cluster_url(), 'clusterincr', 1));
echo count($ids), " sessions on ", count(cluster_masters(cluster_url())), " masters\n";
$list = var_export($ids, true);
$children = [];
for ($c = 0; $c < 8; $c++) {
    $children[] = start_child("
        \$ids = $list;
        for (\$i = 0; \$i < 40; \$i++) {
            session_id(\$ids[($c + \$i) % 3]);
            if (!session_start()) { fwrite(STDERR, \"start failed\\n\"); exit(1); }
            \$n = \$_SESSION['n'] ?? 0;
            usleep(200);
            \$_SESSION['n'] = \$n + 1;
            if (!session_write_close()) { echo \"write failed\\n\"; }
        }
        echo \"done\\n\";", ['session.save_path' => $path]);
}
$outputs = array_map('finish_child', $children);
echo count(array_filter($outputs, fn($o) => trim($o) === 'done')), " children done\n";
// Each session got the increments aimed at it, none lost.
$expected = [0, 0, 0];
for ($c = 0; $c < 8; $c++) {
    for ($i = 0; $i < 40; $i++) {
        $expected[($c + $i) % 3]++;
    }
}
ini_set('session.save_handler', 'rsession');
session_save_path($path);
$total = 0;
foreach ($ids as $k => $id) {
    session_id($id);
    session_start();
    $n = $_SESSION['n'] ?? 0;
    $total += $n;
    echo $n === $expected[$k] ? "exact\n" : "session $k: $n, expected {$expected[$k]}\n";
    session_destroy();
}
var_dump($total);
?>
--EXPECT--
3 sessions on 3 masters
8 children done
exact
exact
exact
int(320)
