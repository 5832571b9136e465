<?php
// The CPU seconds (user + system) a store server has used, for its cost per
// session cycle. Prints one line of JSON. Plain sockets: the figure must not
// depend on either client library under test.
// Usage: php server_stats.php redis|memcached HOST:PORT
[, $kind, $addr] = $argv + [null, null, null];
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
