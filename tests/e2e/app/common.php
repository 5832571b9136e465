<?php
// Shared by the e2e pages. Every page answers with one line the load
// generator recognises: "<TAG> <session id> <counter>".
header('Content-Type: text/plain');
header('Cache-Control: no-store');

function e2e_fail(int $status, string $why): never {
    http_response_code($status);
    echo "FAIL $why\n";
    exit;
}

function e2e_start(array $options = []): void {
    if (!session_start($options)) {
        e2e_fail(503, 'session_start');
    }
}

function e2e_increment(int $holdMs = 0): void {
    e2e_start();
    $n = ($_SESSION['n'] ?? 0) + 1;
    $_SESSION['n'] = $n;
    if (isset($_GET['pad'])) {
        $_SESSION['pad'] = str_repeat('x', (int)$_GET['pad']);
    }
    if ($holdMs > 0) {
        usleep($holdMs * 1000);
    }
    $id = session_id();
    // session_write_close() returns true even when the handler's write
    // failed (PHP only warns), so a warning during it is the failure.
    error_clear_last();
    $closed = session_write_close();
    $e = error_get_last();
    // rsession's notice that a read-only session's changes were not saved
    // (lock_failure=readonly) is a failed write too.
    $failed = $e !== null && (($e['type'] & (E_WARNING | E_USER_WARNING | E_ERROR))
        || (($e['type'] & E_NOTICE) && str_contains($e['message'], 'rsession:')));
    if (!$closed || $failed) {
        e2e_fail(500, 'write');
    }
    echo "OK $id $n\n";
}
