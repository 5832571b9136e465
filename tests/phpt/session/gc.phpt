--TEST--
session_gc() returns a count and removes only expired sessions
--SKIPIF--
<?php if (getenv('RSESSION_SAVE_PATH_TEMPLATE')) die('skip ages sessions through file mtimes (files stores)'); ?>
--INI--
session.use_strict_mode=1
session.gc_maxlifetime=100
session.gc_probability=0
--FILE--
<?php
require __DIR__ . '/setup.inc';
session_save_path(test_save_path('gc'));
$ids = [];
foreach (['old1', 'old2', 'fresh'] as $name) {
    session_id(session_create_id());
    session_start();
    $_SESSION['name'] = $name;
    $ids[$name] = session_id();
    session_write_close();
}
touch(store_dir() . '/sess_' . $ids['old1'], time() - 200);
touch(store_dir() . '/sess_' . $ids['old2'], time() - 200);

// gc runs inside an active session: use a new one, not an aged one.
session_id(session_create_id());
session_start();
var_dump(session_gc());
session_destroy();

foreach ($ids as $name => $id) {
    $_SESSION = [];
    session_id($id);
    session_start();
    echo $name, ': ', session_id() === $id ? ($_SESSION['name'] ?? '?') : 'removed', "\n";
    session_write_close();
}
?>
--EXPECT--
int(2)
old1: removed
old2: removed
fresh: fresh
