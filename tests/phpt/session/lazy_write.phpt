--TEST--
Lazy write: unchanged data is not rewritten but stays alive (gc does not take it)
--SKIPIF--
<?php if (getenv('RSESSION_SAVE_PATH_TEMPLATE')) die('skip needs file mtimes (files stores)'); ?>
--INI--
session.use_strict_mode=0
session.lazy_write=1
session.gc_maxlifetime=100
session.gc_probability=0
--FILE--
<?php
require __DIR__ . '/setup.inc';
session_save_path(test_save_path('lazy_write'));
session_id('lazywrite01');
session_start();
$_SESSION['v'] = 1;
session_write_close();
$file = store_dir() . '/sess_lazywrite01';
clearstatcache();
$ino = fileinode($file);
touch($file, time() - 90);             // nearly expired

session_start();                         // unchanged: lazy write touches only
session_write_close();
clearstatcache();
var_dump(filemtime($file) >= time() - 5); // refreshed
var_dump(fileinode($file) === $ino);      // not rewritten

ini_set('session.gc_maxlifetime', 50);
touch(store_dir() . '/sess_other', time() - 90);
session_start();
var_dump(session_gc());                  // only the stale one
var_dump($_SESSION['v']);
session_destroy();
?>
--EXPECT--
bool(true)
bool(true)
int(1)
int(1)
