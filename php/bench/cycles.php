<?php
// Locked session cycles per second in one process: session_start() →
// change 1 KB → session_write_close(). Prints one line of JSON.
// Usage: php [ini...] cycles.php SECONDS
ob_start();
$seconds = (float) ($argv[1] ?? 3);
$payload = str_repeat('x', 1024);
session_id('benchcycles' . getmypid());
// Warm up (connections, first write).
for ($i = 0; $i < 50; $i++) {
    if (!session_start()) {
        fwrite(STDERR, "session_start() failed: the figure would be meaningless\n");
        exit(1);
    }
    $_SESSION['p'] = $payload . $i;
    session_write_close();
}
$n = 0;
$r0 = getrusage();
$t0 = hrtime(true);
$until = $t0 + (int) ($seconds * 1e9);
do {
    for ($i = 0; $i < 100; $i++, $n++) {
        if (!session_start()) {
            fwrite(STDERR, "session_start() failed: the figure would be meaningless\n");
            exit(1);
        }
        $_SESSION['p'] = $payload . $n;
        session_write_close();
    }
} while (hrtime(true) < $until);
$dt = (hrtime(true) - $t0) / 1e9;
$r1 = getrusage();
// This process's CPU time (user + system) over the timed cycles.
$cpu = static fn (array $r): float => $r['ru_utime.tv_sec'] + $r['ru_utime.tv_usec'] / 1e6
    + $r['ru_stime.tv_sec'] + $r['ru_stime.tv_usec'] / 1e6;
session_start();
session_destroy();
ob_end_clean();
echo json_encode(['cycles' => $n, 'seconds' => $dt, 'per_second' => $n / $dt,
    'client_cpu_us' => ($cpu($r1) - $cpu($r0)) / $n * 1e6]), "\n";
