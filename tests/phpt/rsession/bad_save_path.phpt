--TEST--
A save_path that cannot be parsed: session_start() false, an rsession: warning, no crash
--INI--
session.save_handler=rsession
--FILE--
<?php
require __DIR__ . '/setup.inc';
foreach (['relative/dir', 'redis://h:0', 'redis://h?timeout_ms=abc', 'ftp://x', 'memcached://a,,b', '2;/tmp/x'] as $path) {
    session_save_path($path);
    var_dump(session_start());
}
echo "alive\n";
?>
--EXPECTF--
Warning: session_start(): rsession: save_path "relative/dir": a directory must be an absolute path in %s on line %d

Warning: session_start(): Failed to initialize storage module: rsession (path: relative/dir) in %s on line %d
bool(false)

Warning: session_start(): rsession: save_path "redis://h:0": port "0" is not a number between 1 and 65535 in %s on line %d

Warning: session_start(): Failed to initialize storage module: rsession (path: redis://h:0) in %s on line %d
bool(false)

Warning: session_start(): rsession: save_path "redis://h?timeout_ms=abc": timeout_ms="abc" is not a number of milliseconds between 1 and 3600000 in %s on line %d

Warning: session_start(): Failed to initialize storage module: rsession (path: redis://h?timeout_ms=abc) in %s on line %d
bool(false)

Warning: session_start(): rsession: save_path "ftp://x": unknown scheme; use an absolute directory, file://, redis://, rediss://, redis+unix://, redis-cluster://, rediss-cluster://, redis-sentinel://, memcached://, pgsql://, postgresql:// or mysql:// in %s on line %d

Warning: session_start(): Failed to initialize storage module: rsession (path: ftp://x) in %s on line %d
bool(false)

Warning: session_start(): rsession: save_path "memcached://a,,b": empty server in the list in %s on line %d

Warning: session_start(): Failed to initialize storage module: rsession (path: memcached://a,,b) in %s on line %d
bool(false)

Warning: session_start(): rsession: save_path "2;/tmp/x": the files handler's "N;MODE;/dir" form is not supported; give an absolute directory in %s on line %d

Warning: session_start(): Failed to initialize storage module: rsession (path: 2;/tmp/x) in %s on line %d
bool(false)
alive
