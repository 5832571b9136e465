<?php
// Lock handoff delay: N processes contend for one session, each holding the
// lock HOLD_MS per turn. Every turn records when session_start() returned
// and when the lock was released (hrtime: one monotonic clock for all
// processes on the machine). A handoff delay is the time from one release to
// the next acquisition by a process that was already waiting.
//
// Usage: php [ini...] handoff.php PROCESSES TURNS HOLD_MS   (driver)
//        php [ini...] handoff.php --child ID TURNS HOLD_MS  (spawned)
require __DIR__ . '/stats.php';
if (($argv[1] ?? '') === '--child') {
    ob_start();
    [, , $sid, $turns, $holdMs] = $argv;
    $events = [];
    for ($i = 0; $i < (int) $turns; $i++) {
        $asked = hrtime(true);
        session_id($sid);
        if (!session_start()) {
            fwrite(STDERR, "session_start failed\n");
            exit(1);
        }
        $got = hrtime(true);
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
        usleep((int) $holdMs * 1000);
        $released = hrtime(true);
        session_write_close();
        $events[] = [$asked, $got, $released];
        usleep(random_int(0, 2000));      // let others queue up
    }
    ob_end_clean();
    echo json_encode($events);
    exit(0);
}

[$procs, $turns, $holdMs] = [(int) ($argv[1] ?? 8), (int) ($argv[2] ?? 20), (int) ($argv[3] ?? 20)];
$sid = 'benchhandoff' . getmypid();
// Children get this process's session settings and extensions.
$cmd = [PHP_BINARY, '-n'];
foreach (ini_get_all(null, false) as $k => $v) {
    if ($k === 'session.save_handler' && $v === 'user') {
        continue;   // a userland handler: the child's auto_prepend_file sets it
    }
    if (str_starts_with($k, 'session.') || str_starts_with($k, 'rsession.') || str_starts_with($k, 'redis.')
        || str_starts_with($k, 'memcached.') || ($k === 'auto_prepend_file' && $v !== '')) {
        $cmd[] = '-d';
        $cmd[] = "$k=\"$v\"";
    }
}
foreach (get_loaded_extensions() as $ext) {
    if (in_array($ext, ['rsession', 'redis', 'memcached', 'igbinary', 'msgpack', 'PDO', 'mysqlnd', 'pdo_pgsql', 'pdo_mysql'], true)) {
        $path = $ext === 'rsession' ? getenv('RSESSION_SO') : strtolower($ext);
        $cmd[] = '-d';
        $cmd[] = "extension=$path";
    }
}
$children = [];
for ($c = 0; $c < $procs; $c++) {
    $p = proc_open(array_merge($cmd, [__FILE__, '--child', $sid, $turns, $holdMs]), [1 => ['pipe', 'w']], $pipes);
    $children[] = [$p, $pipes[1]];
}
$all = [];
foreach ($children as [$p, $out]) {
    $all = array_merge($all, json_decode(stream_get_contents($out), true) ?: []);
    proc_close($p);
}
usort($all, fn($a, $b) => $a[1] <=> $b[1]);
$delays = [];
for ($i = 1; $i < count($all); $i++) {
    [$asked, $got] = $all[$i];
    $prevRelease = $all[$i - 1][2];
    if ($asked < $prevRelease) {           // it was waiting when the lock was freed
        $delays[] = ($got - $prevRelease) / 1e6;
    }
}
$n = count($delays);
echo json_encode([
    'turns' => count($all), 'expected' => $procs * $turns, 'handoffs' => $n,
    'mean_ms' => $n ? array_sum($delays) / $n : null, 'median_ms' => median($delays), 'p95_ms' => quantile($delays, 0.95),
]), "\n";
