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
session_start();
session_destroy();
ob_end_clean();
echo json_encode(['cycles' => $n, 'seconds' => $dt, 'per_second' => $n / $dt]), "\n";
