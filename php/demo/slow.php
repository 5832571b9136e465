<?php
require __DIR__ . '/layout.inc';
$asked = microtime(true);
if (!session_start()) {
    http_response_code(503);
    exit('The session could not be started (lock wait exceeded?); see the server log.');
}
$got = microtime(true);
$_SESSION['count'] = ($_SESSION['count'] ?? 0) + 1;
sleep(3);                                // hold the lock
session_write_close();

page_start('Slow page');
printf('<p>This page waited <b>%d ms</b> for the session lock, then held it for 3 s.</p>', ($got - $asked) * 1000);
echo '<p>Open it in two tabs at once: the second tab waits for the first (about 3 s), ',
    'then holds the lock itself. With PHP\'s <code>files</code> handler the wait has no limit; ',
    'with rsession it is bounded by <code>rsession.lock_wait_ms</code> (now ', h(ini_get('rsession.lock_wait_ms')), ' ms).</p>';
page_end();
