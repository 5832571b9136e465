--TEST--
After logout (session_destroy(); session_start()), the new anonymous session belongs to nobody, with or without strict mode
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('logout');
ini_set('session.save_path', $save);
foreach (['0', '1'] as $strict) {
    $user = "olga$strict";
    echo run_child($save, '
        session_id("login' . $strict . '");
        session_start();
        RSession\set_user("' . $user . '");
        RSession\set_timeout(0);
        $_SESSION["logged_in"] = true;
        session_destroy();
        session_id("");
        session_start();
        $_SESSION["anon"] = 1;
        $anon = session_id();
        session_write_close();
        $mine = array_column(RSession\user_sessions("' . $user . '"), "id");
        var_dump($anon !== "login' . $strict . '", $mine);
        echo ob_get_clean();', ['session.use_strict_mode' => $strict]);
}
?>
--EXPECT--
bool(true)
array(0) {
}
bool(true)
array(0) {
}
