<?php
require __DIR__ . '/layout.inc';
$started = microtime(true);
if (!session_start()) {
    http_response_code(503);
    exit('The session could not be started; see the server log.');
}
$_SESSION['count'] = ($_SESSION['count'] ?? 0) + 1;
$count = $_SESSION['count'];
$waited = lock_wait_ms();
session_write_close();

page_start('Counter');
echo '<p class="big">', h($count), '</p>';
echo '<p>Reload to count up. This request waited <b>', h($waited), ' ms</b> for the session lock.</p>';
echo '<p>Open <a href="/slow.php">the slow page</a> in one tab and reload this one in another: ',
    'the counter waits until the slow page releases the lock, and no increment is lost.</p>';
page_end();
