<?php
// Memory of one process over many locked session cycles: VmRSS after a
// warm-up and at the end. Prints one line of JSON.
// Usage: php [ini...] rss.php CYCLES
ob_start();
function rss_kb(): int
{
    preg_match('/^VmRSS:\s+(\d+)/m', file_get_contents('/proc/self/status'), $m);
    return (int) $m[1];
}
$cycles = (int) ($argv[1] ?? 100000);
$payload = str_repeat('x', 1024);
for ($i = 0; $i < 1000; $i++) {
    session_id('benchrss' . ($i % 50));
    session_start();
    $_SESSION['p'] = $payload . $i;
    session_write_close();
}
$before = rss_kb();
for ($i = 0; $i < $cycles; $i++) {
    session_id('benchrss' . ($i % 50));
    session_start();
    $_SESSION['p'] = $payload . $i;
    session_write_close();
}
$after = rss_kb();
ob_end_clean();
echo json_encode(['cycles' => $cycles, 'rss_before_kb' => $before, 'rss_after_kb' => $after, 'growth_kb' => $after - $before]), "\n";
