--TEST--
Redis Cluster: kill_user_sessions() ends a user's sessions on all three masters at once, one of them held by a request that then cannot bring it back
--FILE--
<?php
require __DIR__ . '/setup.inc';
$path = cluster_path('killuser');
$byMaster = cluster_ids_on_every_master(cluster_url(), 'clusterkill', 2);
$ids = array_merge(...$byMaster);
$code = fn(string $id) => "
    session_id('$id');
    session_start();
    \$_SESSION['n'] = 1;
    RSession\\set_user('kim');
    session_write_close();
    echo 'ok';";
foreach ($ids as $id) {
    $child = start_child($code($id), ['session.save_path' => $path]);
    finish_child($child) === 'ok' or exit("creating $id failed\n");
}
ini_set('session.save_handler', 'rsession');
session_save_path($path);
$listed = array_column(RSession\user_sessions('kim'), 'id');
sort($listed);
$all = $ids;
sort($all);
var_dump($listed === $all);

// A request holds one of them (on the last master) while the kill runs.
$dir = fresh_dir('cluster-killuser');
$held = $byMaster[2][1];
$holder = start_child("
    session_id('$held');
    session_start();
    touch('$dir/holding');
    while (!file_exists('$dir/killed')) { usleep(5000); }
    \$_SESSION['n'] = 99;
    set_error_handler(function (\$no, \$msg) { echo \$msg, \"\\n\"; return true; });
    var_dump(session_write_close());", ['session.save_path' => $path]);
wait_for_file("$dir/holding");
$keep = $byMaster[0][0];
var_dump(RSession\kill_user_sessions('kim', $keep));
touch("$dir/killed");
echo preg_replace('/session [a-z0-9]+…: /', 'session …: ', finish_child($holder));
var_dump(array_column(RSession\user_sessions('kim'), 'id') === [$keep]);
foreach ($ids as $id) {
    session_id($id);
    session_start(['read_and_close' => true]);
    echo $id === $keep ? 'kept ' : 'gone ', isset($_SESSION['n']) ? "alive\n" : "empty\n";
}
?>
--EXPECT--
bool(true)
int(5)
session_write_close(): rsession: session …: the session was killed (or destroyed) while this request used it; its changes were not saved
bool(true)
bool(true)
kept alive
gone empty
gone empty
gone empty
gone empty
gone empty
