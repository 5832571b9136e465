<?php
// One of the concurrent processes of the lost-increments figure: LOOPS
// increments of one session's counter, each holding the session PAUSE_US
// (the page's work) between session_start() and session_write_close(). A
// failed start or a write PHP warns about is tried again. Prints
// "ok <written> fail <failed>".
// Usage: php [ini...] increment.php ID LOOPS PAUSE_US
ob_start();
[, $id, $loops, $pause] = $argv;
$ok = $fail = $tries = 0;
$warned = false;
set_error_handler(function (int $no, string $m) use (&$warned): bool {
    $warned = $warned || str_contains($m, 'Failed to write session data');
    fwrite(STDERR, "$m\n");
    return true;
});
while ($ok < (int) $loops && $tries++ < 100 * (int) $loops) {
    session_id($id);
    if (!session_start()) {
        usleep(10000);
        $fail++;
        continue;
    }
    $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
    usleep((int) $pause);
    $warned = false;
    if (session_write_close() && !$warned) {
        $ok++;
    } else {
        $fail++;
    }
}
ob_end_clean();
echo "ok $ok fail $fail\n";
