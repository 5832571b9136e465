--TEST--
session_regenerate_id() with and without deleting the old session
--INI--
session.use_strict_mode=1
--FILE--
<?php
require __DIR__ . '/setup.inc';
session_save_path(test_save_path('regenerate'));

session_start();
$first = session_id();
$_SESSION['v'] = 'kept';
session_write_close();

// Without delete: the old session stays, the data moves to the new id.
session_id($first);
session_start();
var_dump(session_regenerate_id(false));
$second = session_id();
var_dump($second !== $first, $_SESSION['v']);
session_write_close();

// With delete: the old id is gone.
session_id($second);
session_start();
var_dump(session_regenerate_id(true));
$third = session_id();
session_write_close();

foreach (['first' => $first, 'second' => $second, 'third' => $third] as $name => $id) {
    $_SESSION = [];
    session_id($id);
    session_start();
    // Strict mode adopts only ids the store knows.
    echo $name, ': ', session_id() === $id ? 'exists' : 'gone', ' ', json_encode($_SESSION), "\n";
    session_destroy();
}
?>
--EXPECT--
bool(true)
bool(true)
string(4) "kept"
bool(true)
first: exists {"v":"kept"}
second: gone []
third: exists {"v":"kept"}
