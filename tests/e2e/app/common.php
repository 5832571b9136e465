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
    if (!e2e_close()) {
        e2e_fail(500, 'write');
    }
    echo "OK $id $n\n";
}

/**
 * session_write_close(), true when the data was stored. It returns true even
 * when the handler's write failed, so the errors raised during it decide,
 * all of them (error_get_last() would see only the last one):
 * - PHP's own "Failed to write session data" warning: PHP raises it whenever
 *   the handler's write or update_timestamp returns FAILURE, which rsession
 *   does whenever the data was not stored;
 * - an rsession warning or notice that the write was refused or lost
 *   ("nothing was written", "were not saved": a lost lock, a kill, the
 *   read-only notice of lock_failure=readonly).
 * Other warnings (a write-through's warning that its cache does not answer
 * while its store took the write, a peer's own chatter) are not failures:
 * they are logged as usual, and the harness judges them.
 */
function e2e_close(): bool {
    $failed = false;
    set_error_handler(function (int $type, string $message) use (&$failed): bool {
        if (str_contains($message, 'Failed to write session data')
            || (str_contains($message, 'rsession:')
                && preg_match('/nothing was written|were not saved|write (was )?refused/', $message))) {
            $failed = true;
        }
        return false; // logged as usual
    });
    try {
        $closed = session_write_close();
    } finally {
        restore_error_handler();
    }
    return $closed && !$failed;
}
