<?php
require __DIR__ . '/layout.inc';
// Read-only: this page never waits for the slow page's lock.
ini_set('rsession.read_only', '1');
session_start();
$lock = function_exists('RSession\lock_info') ? RSession\lock_info(session_id()) : null;
session_write_close();

page_start('Settings');
echo '<h2>INI</h2><table>';
foreach (['session.save_handler', 'session.save_path', 'session.gc_maxlifetime', 'session.use_strict_mode',
          'session.lazy_write', 'rsession.locking', 'rsession.lock_wait_ms', 'rsession.lock_ttl_ms',
          'rsession.lock_failure', 'rsession.read_only'] as $name) {
    echo '<tr><th>', h($name), '</th><td>', h((string) ini_get($name)), '</td></tr>';
}
echo '</table><p class="note">This page sets <code>rsession.read_only=1</code> for itself, so it opens ',
    'even while the slow page holds the lock.</p>';
echo '<h2>Lock of this session</h2>';
if ($lock === null) {
    echo '<p>Not locked.</p>';
} else {
    echo '<table>';
    foreach ($lock as $k => $v) echo '<tr><th>', h($k), '</th><td>', h((string) $v), '</td></tr>';
    echo '</table>';
}
echo '<h2>This worker\'s counters</h2><table>';
foreach (RSession\stats() as $k => $v) echo '<tr><th>', h($k), '</th><td>', h((string) $v), '</td></tr>';
echo '</table>';
page_end();
