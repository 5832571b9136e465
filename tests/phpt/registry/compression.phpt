--TEST--
compress=zstd|lz4 on every store: large sessions round-trip byte for byte under any setting, switched between requests; a corrupt compressed value is a loud rsession: failure that never replaces the session
--FILE--
<?php
require __DIR__ . '/setup.inc';
$base = registry_save_path('compression');
// Realistic serialize() output of about 200 KB, with NUL bytes, made in
// each child (too large for a command line).
$make = '$d = []; for ($i = 0; $i < 2000; $i++) { $d["k$i"] = ["course" => "Course $i", "grade" => $i / 7, "seen" => [$i, $i + 1], "\0" => "nul"]; }';
eval($make);
$data = $d;
$settings = ['none', 'zstd', 'lz4'];
$ok = true;
foreach ($settings as $write) {
    $id = "zip$write";
    $out = run_child(with_query($base, "compress=$write"), '
        session_id("' . $id . '");
        session_start();
        ' . $make . '
        $_SESSION["d"] = $d;
        session_write_close();
        echo "ok";');
    foreach ($settings as $read) {
        // Read, change, write under another setting, read again under a third.
        $got = run_child(with_query($base, "compress=$read"), '
            session_id("' . $id . '");
            session_start();
            $before = md5(serialize($_SESSION["d"] ?? null));
            $_SESSION["n"] = ($_SESSION["n"] ?? 0) + 1;
            session_write_close();
            echo $before, " ", $_SESSION["n"];');
        $ok = $ok && $out === 'ok' && str_starts_with($got, md5(serialize($data)) . ' ');
        if (!$ok) { echo "written $write, read $read: $out / $got\n"; break 2; }
    }
}
var_dump($ok);
// How small it was stored (files, memcached: the whole item; redis, SQL: the data).
$size = truncate_stored(with_query($base, 'compress=zstd'), 'zipzstd', 0);
var_dump($size < strlen(serialize($data)) / 3);

// Broken behind rsession's back: reading fails loudly, every time; the
// bytes are left as they were (no empty session is written over them).
$before = truncate_stored($base, 'ziplz4', 8);
foreach (['lz4', 'none'] as $s) {
    echo run_child(with_query($base, "compress=$s"), '
        session_id("ziplz4");
        set_error_handler(function ($no, $msg) { echo $msg, "\n"; return true; });
        var_dump(session_start());
        echo ob_get_clean();');
}
var_dump(truncate_stored($base, 'ziplz4', 0) === $before);
?>
--EXPECTF--
bool(true)
bool(true)
session_start(): rsession: %s store: session ziplz4: its stored data cannot be read (corrupt lz4 data%s); it is left as it is
session_start(): Failed to read session data: rsession (path: %s)
bool(false)
session_start(): rsession: %s store: session ziplz4: its stored data cannot be read (corrupt lz4 data%s); it is left as it is
session_start(): Failed to read session data: rsession (path: %s)
bool(false)
bool(true)
