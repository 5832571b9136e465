--TEST--
Redis: AUTH with a password and with an ACL user, db selection, prefix isolation, bad credentials
--SKIPIF--
<?php if (getenv('RSESSION_REDIS_URL')) die('skip on a private single server only');
?>
--FILE--
<?php
require __DIR__ . '/setup.inc';
$port = free_port();
$pidFile = start_private_redis($port, ['--requirepass', 'sec%ret', '--user', 'alice', 'on', '>alicepw', '~*', '&*', '+@all']);
ini_set('session.save_handler', 'rsession');
ini_set('session.use_strict_mode', '0');

function cycle(string $path, string $id, ?string $set = null): string
{
    session_save_path($path);
    session_id($id);
    if (!session_start()) {
        return 'start failed';
    }
    $v = $_SESSION['v'] ?? '-';
    if ($set !== null) {
        $_SESSION['v'] = $set;
    }
    session_write_close();
    return $v;
}

$pw = "redis://:sec%25ret@127.0.0.1:$port";
echo 'password: ', cycle("$pw/0?prefix=a:", 'authdb1', 'in-a-db0'), ' ', cycle("$pw/0?prefix=a:", 'authdb1'), "\n";
echo 'acl user: ', cycle("redis://alice:alicepw@127.0.0.1:$port/0?prefix=a:", 'authdb1'), "\n";
echo 'db 3: ', cycle("$pw/3?prefix=a:", 'authdb1'), "\n";
echo 'prefix b: ', cycle("$pw/0?prefix=b:", 'authdb1'), "\n";
echo 'wrong password: ', @cycle("redis://:nope@127.0.0.1:$port/0?prefix=a:", 'authdb1'), "\n";
echo preg_replace('/^session_start\(\): /', '', error_get_last()['message']), "\n";
stop_private_redis($pidFile);
?>
--EXPECTF--
password: - in-a-db0
acl user: in-a-db0
db 3: -
prefix b: -
wrong password: start failed
Failed to read session data: rsession (path: redis://:nope@127.0.0.1:%d/0?prefix=a:)
