<?php
// Prints the stored counter (read-only).
require __DIR__ . '/common.php';
e2e_start(['read_and_close' => true]);
echo "COUNT " . session_id() . " " . ($_SESSION['n'] ?? 0) . "\n";
