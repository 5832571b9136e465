--TEST--
set_user() and set_timeout() follow the session through session_regenerate_id(), with and without delete
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('regenerate');
ini_set('session.save_path', $save);
echo run_child($save, '
    session_id("regen1");
    session_start();
    RSession\set_user("ivy");
    RSession\set_timeout(600);
    $_SESSION["v"] = 1;
    session_regenerate_id(true);
    $new = session_id();
    $list = RSession\user_sessions("ivy");
    var_dump(count($list), $list[0]["id"] === $new, $list[0]["timeout"]);
    session_regenerate_id(false);
    $newer = session_id();
    $ids = array_column(RSession\user_sessions("ivy"), "id");
    sort($ids);
    $want = [$new, $newer];
    sort($want);
    var_dump($ids === $want);
    session_write_close();
    // A new session started later in the request inherits nothing.
    session_id("unrelated1");
    session_start();
    $_SESSION["x"] = 1;
    session_write_close();
    var_dump(count(RSession\user_sessions("ivy")));
    echo ob_get_clean();');
?>
--EXPECT--
int(1)
bool(true)
int(600)
bool(true)
int(2)
