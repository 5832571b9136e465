--TEST--
Redis over TLS (rediss://): the server's certificate is checked against the trust store; a private CA works through SSL_CERT_FILE
--SKIPIF--
<?php
if (getenv('RSESSION_REDIS_URL')) die('skip on a private single server only');
if (trim((string) shell_exec('command -v openssl')) === '') die('skip openssl CLI missing');
if (!str_contains((string) shell_exec('ldd "$(command -v redis-server)" 2>&1'), 'libssl')) die('skip redis-server built without TLS');
?>
--FILE--
<?php
require __DIR__ . '/setup.inc';
$port = free_port();
$dir = fresh_dir('redis-tls-certs');
// A private CA and a server certificate for 127.0.0.1, made for this run.
$sh = 'cd ' . escapeshellarg($dir) . ' && '
    . 'openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj "/CN=rsession test CA" && '
    . 'openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" && '
    . 'printf "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" > ext.cnf && '
    . 'openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1 -extfile ext.cnf';
exec("($sh) >/dev/null 2>&1", $out, $rc);
if ($rc !== 0) {
    exit("could not make certificates\n");
}
// TLS only: the plain port is off, so nothing can pass without TLS.
$tlsPort = $port;
$pidFile = start_private_redis(0, ['--tls-port', (string) $tlsPort, '--tls-cert-file', "$dir/server.pem",
    '--tls-key-file', "$dir/server.key", '--tls-ca-cert-file', "$dir/ca.pem", '--tls-auth-clients', 'no'], $tlsPort);
// Stopped even when the extension fails hard, so no server outlives the test.
register_shutdown_function(fn() => stop_private_redis($pidFile));

ini_set('session.save_handler', 'rsession');
ini_set('session.use_strict_mode', '0');
$warnings = [];
set_error_handler(function (int $no, string $msg) use (&$warnings) {
    $warnings[] = preg_replace('/^session_start\(\): /', '', $msg);
    return true;
});

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
    return session_write_close() ? $v : "$v (write failed)";
}

// Not trusted yet: refused, with the reason.
putenv('SSL_CERT_FILE=' . $dir . '/nothing.pem');
echo 'untrusted: ', cycle("rediss://127.0.0.1:$tlsPort?prefix=tls-a:", 'tlssession1', 'x'), "\n";
echo count($warnings) > 0 && str_starts_with($warnings[0], 'rsession: ') ? "warning: rsession\n" : "no rsession warning\n";
echo str_contains($warnings[0] ?? '', 'certificate') || str_contains($warnings[0] ?? '', 'cert') ? "mentions the certificate\n" : "says: {$warnings[0]}\n";
$warnings = [];

// Trusted through SSL_CERT_FILE (read at each new connection).
putenv("SSL_CERT_FILE=$dir/ca.pem");
$path = "rediss://127.0.0.1:$tlsPort/2?prefix=tls-b:";
echo 'trusted: ', cycle($path, 'tlssession1', 'over-tls'), ' ', cycle($path, 'tlssession1'), "\n";
echo 'lock_info: ', var_export(RSession\lock_info('tlssession1'), true), "\n";
// One connection serves every request: what TLS sends after the handshake
// (session tickets) never makes the connection look closed.
$connections = function () use ($dir, $tlsPort): int {
    $info = (string) shell_exec('redis-cli --tls --cacert ' . escapeshellarg("$dir/ca.pem") . " -h 127.0.0.1 -p $tlsPort INFO stats 2>&1");
    return preg_match('/total_connections_received:(\d+)/', $info, $m) ? (int) $m[1] : -1;
};
$before = $connections();
for ($i = 0; $i < 20; $i++) {
    cycle($path, 'tlssession1', "v$i");
}
echo 'new connections for 20 requests: ', $connections() - $before - 1, "\n";
echo 'warnings: ', count($warnings), "\n";
?>
--EXPECT--
untrusted: start failed
warning: rsession
mentions the certificate
trusted: - over-tls
lock_info: NULL
new connections for 20 requests: 0
warnings: 0
