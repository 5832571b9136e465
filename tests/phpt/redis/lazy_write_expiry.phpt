--TEST--
Redis: the idle timeout is the data key's expiry; a lazy write (unchanged data) pushes it back without rewriting
--INI--
session.use_strict_mode=0
session.lazy_write=1
session.gc_maxlifetime=2
--FILE--
<?php
require __DIR__ . '/setup.inc';
ob_start();
ini_set('session.save_handler', 'rsession');
session_save_path(redis_path('lazy_write_expiry'));

function visit(?string $set = null): string
{
    session_id('lazywriteexpiry1');
    session_start();
    $v = $_SESSION['v'] ?? '-';
    if ($set !== null) {
        $_SESSION['v'] = $set;
    }
    session_write_close();
    return $v;
}

$out = [];
visit('kept');
usleep(1_300_000);
$s0 = RSession\stats();
$out[] = 'after 1.3 s: ' . visit();          // unchanged: only the expiry is refreshed
$s1 = RSession\stats();
$out[] = 'lazy: writes +' . ($s1['writes'] - $s0['writes']) . ', skipped +' . ($s1['writes_skipped'] - $s0['writes_skipped']);
usleep(1_300_000);                            // 2.6 s after the write, 1.3 s after the touch
$out[] = 'after 2.6 s: ' . visit();
usleep(2_300_000);                            // idle longer than gc_maxlifetime
$out[] = 'after 2.3 s idle: ' . visit();
ob_end_clean();
echo implode("\n", $out), "\n";
?>
--EXPECT--
after 1.3 s: kept
lazy: writes +0, skipped +1
after 2.6 s: kept
after 2.3 s idle: -
