<?php
// Read-mostly traffic in one process: REQUESTS locked requests spread over
// SESSIONS sessions in turn, one in CHANGE_EVERY changing the data (a
// counter), the others only reading it (PHP's lazy write: the handler is
// told the data did not change). `create` first gives each session 1 KB of
// data, in a process of its own, so that the measured run counts
// steady-state writes, not the sessions' creation. Prints one line of JSON.
// Usage: php [ini...] read_mostly.php create|run TAG SESSIONS [REQUESTS CHANGE_EVERY]
ob_start();
[, $mode, $tag, $sessions] = $argv;
$sessions = (int) $sessions;
$requests = (int) ($argv[4] ?? $sessions);
$every = max(1, (int) ($argv[5] ?? 1));
$fail = static function (string $what): never {
    fwrite(STDERR, "read_mostly.php: $what failed: the figure would be meaningless\n");
    exit(1);
};
$changed = 0;
$t0 = hrtime(true);
for ($i = 0; $i < ($mode === 'create' ? $sessions : $requests); $i++) {
    session_id(sprintf('benchrm%s%05d', $tag, $i % $sessions));
    session_start() || $fail('session_start()');
    if ($mode === 'create') {
        $_SESSION = ['p' => str_repeat('x', 1024), 'n' => 0];
    } elseif ($i % $every === 0) {
        $_SESSION['n']++;
        $changed++;
    } elseif (!isset($_SESSION['p'])) {
        $fail("session {$i} read");
    }
    session_write_close() || $fail('session_write_close()');
}
$dt = (hrtime(true) - $t0) / 1e9;
ob_end_clean();
echo json_encode(['requests' => $i, 'changed' => $changed, 'seconds' => $dt, 'per_second' => $i / $dt]), "\n";
