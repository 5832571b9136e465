<?php
// The CPU seconds (user + system) a store server has used, for its cost per
// session cycle. Prints one line of JSON. Plain sockets: the figure must not
// depend on either client library under test.
// Usage: php server_stats.php redis|memcached HOST:PORT
//        php server_stats.php pgsql|mysql PIDFILE   (the server's processes, from /proc)
[, $kind, $addr] = $argv + [null, null, null];
if ($kind === 'pgsql' || $kind === 'mysql') {
    // PostgreSQL: the postmaster and its children (a backend per client);
    // MariaDB: one process.
    $root = (int) @file($addr)[0];
    $ticks = 0;
    foreach (glob('/proc/[0-9]*/stat') ?: [] as $f) {
        $stat = @file_get_contents($f);
        if ($stat === false) continue;
        $fields = explode(' ', substr($stat, strrpos($stat, ')') + 2));
        $pid = (int) basename(dirname($f));
        if ($pid === $root) {
            // utime, stime, and those of its children that ended (a
            // backend per client connection, gone when the client is)
            $ticks += (int) $fields[11] + (int) $fields[12] + (int) $fields[13] + (int) $fields[14];
        } elseif ((int) $fields[1] === $root) {
            $ticks += (int) $fields[11] + (int) $fields[12];
        }
    }
    if ($root <= 0) {
        fwrite(STDERR, "server_stats.php: no server pid in $addr\n");
        exit(1);
    }
    echo json_encode(['cpu_s' => $ticks / 100]), "\n";   // USER_HZ
    exit(0);
}
$sock = @stream_socket_client("tcp://$addr", $errno, $error, 2.0);
if ($sock === false || !in_array($kind, ['redis', 'memcached'], true)) {
    fwrite(STDERR, "server_stats.php: cannot read $kind stats at $addr: $error\n");
    exit(1);
}
stream_set_timeout($sock, 2);
$fields = [];
if ($kind === 'redis') {
    fwrite($sock, "INFO cpu\r\n");
    $len = (int) substr(fgets($sock), 1); // "$<length>"
    $body = '';
    while (strlen($body) < $len + 2 && !feof($sock)) {
        $body .= fread($sock, $len + 2 - strlen($body));
    }
    foreach (explode("\r\n", $body) as $line) {
        if (str_contains($line, ':')) {
            [$k, $v] = explode(':', $line, 2);
            $fields[$k] = $v;
        }
    }
    $cpu = (float) $fields['used_cpu_user'] + (float) $fields['used_cpu_sys'];
} else {
    fwrite($sock, "stats\r\n");
    while (($line = fgets($sock)) !== false && trim($line) !== 'END') {
        $p = explode(' ', trim($line));
        if (count($p) === 3) {
            $fields[$p[1]] = $p[2];
        }
    }
    $cpu = (float) $fields['rusage_user'] + (float) $fields['rusage_system'];
}
echo json_encode(['cpu_s' => $cpu]), "\n";
