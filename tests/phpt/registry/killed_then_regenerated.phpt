--TEST--
A session killed while its request holds it stays dead when that request then regenerates its id (with or without delete; after kill_user_sessions() or kill_all_sessions())
--FILE--
<?php
require __DIR__ . '/setup.inc';
foreach ([['user', 'false'], ['user', 'true'], ['all', 'false'], ['all', 'true']] as [$kill, $delete]) {
    $tag = "$kill-$delete";
    $save = registry_save_path("killregen-$tag");
    ini_set('session.save_path', $save);
    make_session($save, 'victim1', 'kim', ['v' => 'before']);
    $sig = signal_dir("killregen-$tag");
    $holder = start_child($save, "
        session_id('victim1');
        session_start();
        touch('$sig/holding');
        while (!file_exists('$sig/killed')) usleep(2000);
        session_regenerate_id($delete);
        \$_SESSION['v'] = 'after the kill';
        file_put_contents('$sig/new_id', session_id());
        session_write_close();
        echo ob_get_clean();
    ");
    wait_for_file("$sig/holding");
    if ($kill === 'user') {
        RSession\kill_user_sessions('kim');
    } else {
        RSession\kill_all_sessions();
    }
    touch("$sig/killed");
    $out = finish_child($holder);
    $new = file_get_contents("$sig/new_id");
    echo "$tag: ", json_encode([
        'told' => str_contains($out, 'rsession:') && str_contains($out, 'killed'),
        'listed' => array_column(RSession\user_sessions('kim'), 'id'),
        'old' => session_data($save, 'victim1'),
        'new' => session_data($save, $new),
        'new_is_new' => $new !== 'victim1',
    ]), "\n";
}
?>
--EXPECT--
user-false: {"told":true,"listed":[],"old":"[]","new":"[]","new_is_new":true}
user-true: {"told":true,"listed":[],"old":"[]","new":"[]","new_is_new":true}
all-false: {"told":true,"listed":[],"old":"[]","new":"[]","new_is_new":true}
all-true: {"told":true,"listed":[],"old":"[]","new":"[]","new_is_new":true}
