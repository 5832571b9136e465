--TEST--
php/bin/rsession: list, kill (user with keep, session, all), lock, stats; tables, --json and exit codes 0/1/2
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('cli');
foreach (['cliA1', 'cliA2', 'cliA3'] as $id) {
    make_session($save, $id, 'lena', [], ['REMOTE_ADDR' => '203.0.113.9']);
}
/** Runs the tool; returns [exit code, stdout, stderr]. */
function tool(string $save, string ...$args): array
{
    $cmd = array_merge([PHP_BINARY, '-n', '-d', 'extension=' . getenv('RSESSION_EXT'),
        __DIR__ . '/../../../php/bin/rsession', '--save-path', $save], $args);
    $p = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
    $out = stream_get_contents($pipes[1]);
    $err = stream_get_contents($pipes[2]);
    return [proc_close($p), $out, $err];
}
[$rc, $out] = tool($save, 'list', '--user', 'lena', '--json');
$rows = json_decode($out, true);
var_dump($rc, array_column($rows, 'id'), $rows[0]['last_ip']);
[$rc, $out] = tool($save, 'list', '--user', 'lena');
var_dump($rc, str_contains($out, 'LAST ACCESS') && substr_count($out, 'cliA') === 3 && str_contains($out, '203.0.113.9'));
[$rc, $out, $err] = tool($save, 'kill', '--user', 'lena', '--keep', 'cliA2');
var_dump($rc, trim($out), str_contains($err, 'done in'));
[$rc, $out] = tool($save, '--json', 'list', '--user=lena');
var_dump(array_column(json_decode($out, true), 'id'));
[$rc, , $err] = tool($save, 'kill', '--session', 'nosuch');
var_dump($rc, trim($err));
[$rc, , $err] = tool($save, 'kill', '--session', '../x');
var_dump($rc, str_starts_with($err, 'rsession: invalid session id'));
[$rc, $out] = tool($save, 'lock', 'cliA2');
var_dump($rc, trim($out));
[$rc, $out] = tool($save, 'stats', '--json');
var_dump($rc, array_keys(json_decode($out, true)) === ['reads', 'writes', 'writes_skipped', 'lock_acquired', 'lock_wait_ms', 'lock_timeouts', 'store_errors', 'lease_renewal_failures', 'cache_hits', 'cache_misses', 'store_writes_skipped', 'reply_spins', 'reply_spin_hits', 'reply_spins_busy']);
foreach ([['bogus'], ['list'], ['kill'], ['kill', '--all'], ['list', '--frobnicate'], []] as $bad) {
    [$rc, , $err] = tool($save, ...$bad);
    echo $rc, ' ', strtok($err, "\n"), "\n";
}
[$rc, $out] = tool($save, 'kill', '--all', '--yes');
var_dump($rc);
[$rc, $out] = tool($save, 'list', '--user', 'lena');
var_dump($rc, trim($out));
?>
--EXPECT--
int(0)
array(3) {
  [0]=>
  string(5) "cliA1"
  [1]=>
  string(5) "cliA2"
  [2]=>
  string(5) "cliA3"
}
string(11) "203.0.113.9"
int(0)
bool(true)
int(0)
string(29) "2 sessions ended (kept cliA2)"
bool(true)
array(1) {
  [0]=>
  string(5) "cliA2"
}
int(1)
string(27) "rsession: no session nosuch"
int(1)
bool(true)
int(0)
string(27) "session cliA2 is not locked"
int(0)
bool(true)
2 rsession: unknown command bogus
2 rsession: list needs --user U
2 rsession: kill needs --user U, --session ID or --all
2 rsession: kill --all ends every session: add --yes to confirm
2 rsession: unknown option --frobnicate
2 rsession: no command given
int(0)
int(0)
string(30) "no live sessions for user lena"
