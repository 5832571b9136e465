<?php
// Reads without the lock: read_and_close, or with ?m=ini (rsession only)
// rsession.read_only=1.
require __DIR__ . '/common.php';
if (($_GET['m'] ?? '') === 'ini' && ini_get('session.save_handler') === 'rsession') {
    ini_set('rsession.read_only', '1');
    e2e_start();
    $n = $_SESSION['n'] ?? 0;
    $id = session_id();
    session_write_close();
} else {
    e2e_start(['read_and_close' => true]);
    $n = $_SESSION['n'] ?? 0;
    $id = session_id();
}
echo "RO $id $n\n";
