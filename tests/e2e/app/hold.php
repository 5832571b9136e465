<?php
// Fault injection: takes the session, records which worker holds it, then
// sleeps with the lock held until the harness kills it (or ?ms= elapses).
require __DIR__ . '/common.php';
e2e_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
$marker = (string)($_GET['marker'] ?? '');
if ($marker !== '' && preg_match('/^[A-Za-z0-9_-]+$/', $marker)) {
    file_put_contents(sys_get_temp_dir() . "/rsession-e2e-$marker.pid", getmypid() . "\n");
}
usleep((int)($_GET['ms'] ?? 30000) * 1000);
$id = session_id();
session_write_close();
echo "OK $id {$_SESSION['n']}\n";
