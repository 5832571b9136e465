<?php
// What PostgreSQL itself counted on some tables (pg_stat_user_tables):
// rows inserted, updated and deleted, and index and sequential scans. The
// counters of a backend reach the statistics when it ends (or at most once
// a second while it runs), so this first waits until no other client of
// the database is connected: the measured PHP processes have exited and
// their backends have flushed. Prints one line of JSON, per table
// {"ins", "upd", "del", "writes", "scans"} (zeros for a table not there).
// Usage: php [ini...] pg_table_writes.php TABLE...   (BENCH_PDO_DSN, BENCH_PDO_USER, BENCH_PDO_PASSWORD)
$pdo = new PDO(getenv('BENCH_PDO_DSN') ?: die("BENCH_PDO_DSN is not set\n"), getenv('BENCH_PDO_USER') ?: '',
    getenv('BENCH_PDO_PASSWORD') ?: '', [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$others = $pdo->prepare("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    . "AND pid <> pg_backend_pid() AND backend_type = 'client backend'");
$until = microtime(true) + 10;
do {
    $others->execute();
    $left = (int) $others->fetchColumn();
} while ($left > 0 && microtime(true) < $until && usleep(20000) === null);
if ($left > 0) {
    fwrite(STDERR, "pg_table_writes.php: $left other clients still connected after 10 s: their writes may be missing\n");
}
$stats = $pdo->prepare('SELECT n_tup_ins, n_tup_upd, n_tup_del, coalesce(idx_scan, 0) + coalesce(seq_scan, 0) '
    . 'FROM pg_stat_user_tables WHERE relname = :t');
$out = [];
foreach (array_slice($argv, 1) as $table) {
    $stats->execute([':t' => $table]);
    [$ins, $upd, $del, $scans] = array_map('intval', $stats->fetch(PDO::FETCH_NUM) ?: [0, 0, 0, 0]);
    $out[$table] = ['ins' => $ins, 'upd' => $upd, 'del' => $del, 'writes' => $ins + $upd + $del, 'scans' => $scans];
}
echo json_encode($out), "\n";
