<?php
// The least a locked session cycle can cost a SQL server: each statement any
// locked handler needs (take the lock, read the row, write it, release),
// alone, back to back on one connection, with the server's CPU per
// statement. Their sum bounds every handler's cycles/s from above, ours and
// PDO's alike. Prints one line of JSON per statement.
// Usage: php [pdo exts] sql_floor.php pgsql|mysql URL PIDFILE [N]
[, $kind, $url, $pidfile] = $argv;
$n = (int) ($argv[4] ?? 3000);
$u = parse_url($url);
$pdo = new PDO(sprintf('%s:host=%s;port=%d;dbname=%s', $kind, $u['host'], $u['port'], ltrim($u['path'], '/')),
    urldecode($u['user']), urldecode($u['pass'] ?? ''), [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$server = static function () use ($kind, $pidfile): float {
    $j = json_decode((string) shell_exec(sprintf('php -n %s %s %s', escapeshellarg(__DIR__ . '/server_stats.php'),
        escapeshellarg($kind), escapeshellarg($pidfile))), true);
    return (float) $j['cpu_s'];
};
$t = 'bench_floor';
$mysql = $kind === 'mysql';
$pdo->exec("DROP TABLE IF EXISTS $t");
$pdo->exec($mysql
    ? "CREATE TABLE $t (prefix VARBINARY(128) NOT NULL, id VARBINARY(256) NOT NULL, data LONGBLOB NOT NULL, "
      . "last_access BIGINT NOT NULL, PRIMARY KEY (prefix, id)) ENGINE=InnoDB"
    : "CREATE TABLE $t (prefix BYTEA NOT NULL, id BYTEA NOT NULL, data BYTEA NOT NULL, last_access BIGINT NOT NULL, "
      . "PRIMARY KEY (prefix, id))");
$hex = bin2hex(str_repeat('x', 1024));
$pdo->exec($mysql ? "INSERT INTO $t VALUES ('app', 's1', X'$hex', 0)"
    : "INSERT INTO $t VALUES ('app', 's1', '\\x$hex', 0)");
// Text statements, as PDO sends them by default on MySQL (emulated prepares).
$statements = $mysql ? [
    'round trip (DO 1)' => fn ($i) => "DO 1",
    'take the lock (GET_LOCK)' => fn ($i) => "SELECT GET_LOCK('bench_floor', 5)",
    'read the row (SELECT by primary key)' => fn ($i) => "SELECT data, last_access FROM $t WHERE prefix = 'app' AND id = 's1'",
    'write 1 KB (UPDATE by primary key)' => fn ($i) => "UPDATE $t SET data = X'$hex', last_access = $i WHERE prefix = 'app' AND id = 's1'",
    'release the lock (RELEASE_LOCK)' => fn ($i) => "SELECT RELEASE_LOCK('bench_floor')",
] : [
    'round trip (SELECT 1)' => fn ($i) => "SELECT 1",
    'take the lock (pg_advisory_lock)' => fn ($i) => "SELECT pg_advisory_lock(4242)",
    'read the row (SELECT by primary key)' => fn ($i) => "SELECT data, last_access FROM $t WHERE prefix = 'app' AND id = 's1'",
    'write 1 KB (UPDATE by primary key)' => fn ($i) => "UPDATE $t SET data = '\\x$hex', last_access = $i WHERE prefix = 'app' AND id = 's1'",
    'release the lock (pg_advisory_unlock)' => fn ($i) => "SELECT pg_advisory_unlock(4242)",
];
foreach ($statements as $label => $sql) {
    for ($i = 0; $i < 200; $i++) {
        $pdo->query($sql($i))->fetchAll();
    }
    $s0 = $server();
    $t0 = hrtime(true);
    for ($i = 0; $i < $n; $i++) {
        $pdo->query($sql($i))->fetchAll();
    }
    $wall = (hrtime(true) - $t0) / 1e3 / $n;
    $cpu = ($server() - $s0) * 1e6 / $n;
    echo json_encode(['statement' => $label, 'wall_us' => $wall, 'server_us' => $cpu]), "\n";
}
$pdo->exec("DROP TABLE $t");
