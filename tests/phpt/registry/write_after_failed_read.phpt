--TEST--
A write after a read that gave up waiting for the lock leaves the holder's session alone (frameworks that swallow the failed read still call write)
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('write_after_failed_read');
ini_set('session.save_path', $save);
$sig = signal_dir('write_after_failed_read');
make_session($save, 'heldsession1', 'kim', ['v' => 'original']);
$holder = start_child($save, "
    session_id('heldsession1'); session_start();
    touch('$sig/held');
    for (\$i = 0; \$i < 1000 && !file_exists('$sig/go'); \$i++) { usleep(10000); }
    \$_SESSION['v'] = 'holder';
    session_write_close(); echo 'holder done';");
wait_for_file("$sig/held");
// What Laravel's Store does with RSession\Handler (and Symfony's strict
// handler with PHP's SessionHandler): the read fails, the write comes anyway.
echo run_child($save, "
    \$h = new RSession\\Handler('$save', ['lock_wait_ms' => 200]);
    \$h->open('', '');
    \$data = @\$h->read('heldsession1');
    var_dump(\$data, @\$h->write('heldsession1', 'v|s:4:\"late\";'));");
var_dump(run_child($save, "ini_set('rsession.read_only', '1'); session_id('heldsession1'); session_start(); echo \$_SESSION['v'];"));
touch("$sig/go");
echo finish_child($holder), "\n";
var_dump(session_data($save, 'heldsession1'), ids(RSession\user_sessions('kim')));
?>
--EXPECT--
bool(false)
bool(false)
string(8) "original"
holder done
string(14) "{"v":"holder"}"
array(1) {
  [0]=>
  string(12) "heldsession1"
}
