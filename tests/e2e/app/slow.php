<?php
// Increments, then keeps the session (and its lock) for ~200 ms.
require __DIR__ . '/common.php';
e2e_increment((int)($_GET['ms'] ?? 200));
