<?php
require __DIR__ . '/layout.php';

$t = start_session();
$_SESSION['count'] = ($_SESSION['count'] ?? 0) + 1;
$_SESSION['visits'][] = time();
$_SESSION['visits'] = array_slice($_SESSION['visits'], -5);
$count = $_SESSION['count'];
session_write_close();                  // release the lock before sending the page

page_start('Counter');
echo '<p class="big">', h($count), '</p>';
echo '<p>Requests in this session (the slow page counts too). Reload to count up.</p>';
printf('<p>This request waited <b>%d ms</b> for the session lock (by <code>RSession\stats()[\'lock_wait_ms\']</code>; '
    . '%d ms by the clock around <code>session_start()</code>).</p>', $t['stats_wait_ms'], $t['wait_ms']);
echo '<p>Try it: open <a href="/slow.php" target="_blank">the slow page</a> in another tab and reload this one ',
    'while it runs. This page waits until the slow page releases the lock, and no increment is lost.</p>';
page_end();
