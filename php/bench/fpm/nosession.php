<?php
// The ceiling: page.php's work without the session.
$recent = bin2hex(random_bytes(512));
echo strlen($recent), "\n";
