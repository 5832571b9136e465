<?php
// Increments the session counter and prints the new value.
require __DIR__ . '/common.php';
e2e_increment();
