<?php
require __DIR__ . '/layout.php';

const INI_NAMES = [
    'rsession.locking', 'rsession.lock_wait_ms', 'rsession.lock_ttl_ms', 'rsession.lock_failure', 'rsession.read_only',
    'session.save_handler', 'session.save_path', 'session.name', 'session.gc_maxlifetime', 'session.gc_probability',
    'session.gc_divisor', 'session.use_strict_mode', 'session.lazy_write', 'session.sid_length',
    'session.sid_bits_per_character', 'session.cookie_httponly', 'session.cookie_samesite',
];
$ini = [];
foreach (INI_NAMES as $name) {
    $ini[$name] = ini_get($name);
}

// This page only reads: it neither waits for the lock nor writes, so it opens
// even while the slow page holds the lock, and can show the holder.
ini_set('rsession.read_only', '1');
start_session();
$id = session_id();
$lock = RSession\lock_info($id);
$stats = RSession\stats();
session_write_close();

page_start('Settings');
echo '<h2>INI settings</h2><table><tr><th>name</th><th>value</th></tr>';
foreach ($ini as $name => $value) {
    echo '<tr><th>', h($name), '</th><td><code>', h($value === false ? '(not set)' : $value), '</code></td></tr>';
}
echo '</table><p class="note">As configured for this server. This page itself then sets ',
    '<code>rsession.read_only=1</code>, so it never waits for the lock.</p>';

echo '<h2>Lock of this session</h2><p><code>RSession\lock_info(session_id())</code>:</p>';
if ($lock === null) {
    echo '<p>null: nobody holds it. Open the <a href="/slow.php" target="_blank">slow page</a> ',
        'in another tab and reload this one within 3 s.</p>';
} else {
    echo '<table>';
    foreach ($lock as $k => $v) {
        echo '<tr><th>', h($k), '</th><td', is_int($v) ? ' class="n"' : '', '>', h($v), '</td></tr>';
    }
    echo '</table>';
}

echo '<h2>Counters of this worker process</h2><p><code>RSession\stats()</code>, since pid ', h(getmypid()),
    ' started (the server runs several workers, so reloads may show different ones):</p><table>';
foreach ($stats as $k => $v) {
    echo '<tr><th>', h($k), '</th><td class="n">', h($v), '</td></tr>';
}
echo '</table>';
page_end();
