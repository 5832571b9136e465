--TEST--
SQL: a hostile table name never reaches SQL; hostile ids never reach the store; a table of another name is created on first use
--FILE--
<?php
require __DIR__ . '/setup.inc';
ini_set('session.save_handler', 'rsession');
$messages = [];
set_error_handler(function ($no, $msg) use (&$messages) {
    $messages[] = $msg;
    return true;
});
foreach (['x;DROP TABLE rsession_sessions', 'a"b', 'a`b', "a'b", 'a b', '1abc', 'ok?x=1'] as $t) {
    session_save_path(sql_path('hostile', 'table=' . rawurlencode($t)));
    $messages = [];
    var_dump(session_start());
    echo $messages[0], "\n";
}
// Ids: only PHP's id characters reach the store, strict mode or not.
session_save_path(sql_path('hostile'));
foreach ([0, 1] as $strict) {
    ini_set('session.use_strict_mode', $strict);
    foreach (["x' OR '1'='1", 'a;DROP TABLE t', "a\0b", "a'--"] as $id) {
        session_id($id);
        $ok = session_start();
        echo $strict, ' ', json_encode($id), ': ', $ok && session_id() === $id ? 'ADOPTED' : 'not adopted', "\n";
        if ($ok) {
            session_write_close();
        }
    }
}
restore_error_handler();
ini_set('session.use_strict_mode', 0);
// A table of its own is made when missing, with its indexes.
$table = 'rs_phpt_' . getmypid();
session_save_path(sql_path('hostile', "table=$table"));
session_id('sqlhostile1');
session_start();
$_SESSION['v'] = "'; DROP TABLE rsession_sessions; --";
session_write_close();
session_id('sqlhostile1');
session_start(['read_and_close' => true]);
var_dump($_SESSION['v']);
sql_admin("DROP TABLE $table, {$table}_generation, {$table}_holders");
var_dump(sql_admin("SELECT count(*) FROM rsession_sessions") >= 0);
?>
--EXPECTF--
bool(false)
session_start(): rsession: save_path "%s": table="x;DROP TABLE rsession_sessions": a table name is 1 to 48 of A-Z a-z 0-9 _, not starting with a digit
bool(false)
session_start(): rsession: save_path "%s": table="a\"b": %s
bool(false)
session_start(): rsession: save_path "%s": table="a`b": %s
bool(false)
session_start(): rsession: save_path "%s": table="a'b": %s
bool(false)
session_start(): rsession: save_path "%s": table="a b": %s
bool(false)
session_start(): rsession: save_path "%s": table="1abc": %s
bool(false)
session_start(): rsession: save_path "%s": table="ok?x=1": %s
0 "x' OR '1'='1": not adopted
0 "a;DROP TABLE t": not adopted
0 "a\u0000b": not adopted
0 "a'--": not adopted
1 "x' OR '1'='1": not adopted
1 "a;DROP TABLE t": not adopted
1 "a\u0000b": not adopted
1 "a'--": not adopted
string(35) "'; DROP TABLE rsession_sessions; --"
bool(true)
