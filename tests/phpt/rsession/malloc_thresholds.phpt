--TEST--
MINIT sets glibc's malloc thresholds (phpinfo says so), unless the environment tunes malloc itself
--FILE--
<?php
$row = function (array $env): string {
    $cmd = [PHP_BINARY, '-n', '-d', 'extension=' . getenv('RSESSION_EXT'), '-i'];
    $p = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null, $env + ['PATH' => getenv('PATH')]);
    $out = stream_get_contents($pipes[1]);
    proc_close($p);
    return preg_match('/^glibc malloc => (.*)$/m', $out, $m) ? $m[1] : 'no row';
};
echo $row([]), "\n";
echo $row(['MALLOC_ARENA_MAX' => '2']), "\n";
echo $row(['GLIBC_TUNABLES' => 'glibc.malloc.trim_threshold=65536']), "\n";
echo $row(['GLIBC_TUNABLES' => 'glibc.rtld.optional_static_tls=512']), "\n";
?>
--EXPECT--
mmap threshold 1 MiB, trim threshold 2 MiB (set by rsession)
as the environment or glibc set it
as the environment or glibc set it
mmap threshold 1 MiB, trim threshold 2 MiB (set by rsession)
