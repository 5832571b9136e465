<?php
require __DIR__ . '/layout.php';

const HOLD_SECONDS = 3;

$t = start_session();
$_SESSION['count'] = ($_SESSION['count'] ?? 0) + 1;
$count = $_SESSION['count'];
sleep(HOLD_SECONDS);                    // hold the lock
$released = microtime(true);
session_write_close();

page_start('Slow page');
printf('<p>This request waited <b>%d ms</b> for the session lock, then held it for %d s.</p>',
    $t['stats_wait_ms'], HOLD_SECONDS);
echo '<table><tr><th>asked for the session</th><td class="n">', h(clock($t['asked'])), '</td></tr>',
    '<tr><th>got the lock</th><td class="n">', h(clock($t['got'])), '</td></tr>',
    '<tr><th>released it</th><td class="n">', h(clock($released)), '</td></tr>',
    '<tr><th>counter after this request</th><td class="n">', h($count), '</td></tr></table>';
echo '<p>Open this page in two tabs at once: the second one waits for the first (about ', HOLD_SECONDS,
    ' s) and its "got the lock" time matches the first one\'s "released it". ',
    'The <a href="/settings.php" target="_blank">settings page</a> opened meanwhile shows who holds the lock.</p>';
printf('<p class="note">PHP\'s <code>files</code> handler would wait without limit; rsession gives up after '
    . '<code>rsession.lock_wait_ms</code> = %s ms (then <code>rsession.lock_failure</code> = %s decides).</p>',
    h(ini_get('rsession.lock_wait_ms')), h(ini_get('rsession.lock_failure')));
page_end();
