<?php
// The benchmark's page: one session cycle that changes 1 KB, as a typical
// logged-in page does (php/bench/fpm.sh).
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
$_SESSION['recent'] = bin2hex(random_bytes(512));
echo $_SESSION['n'], "\n";
