--TEST--
Redis: rsession.spin_us=0 never busy-waits for a reply, the default spins first; a bad value is a loud rsession: error
--FILE--
<?php
require __DIR__ . '/setup.inc';
ini_set('session.save_handler', 'rsession');
session_save_path(redis_path('spinus'));
function cycles(int $n): array
{
    $before = RSession\stats();
    for ($i = 0; $i < $n; $i++) {
        session_id("spinus$i");
        session_start();
        $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
        session_write_close();
    }
    $after = RSession\stats();
    return [$after['reply_spins'] - $before['reply_spins'], $after['reply_spin_hits'] - $before['reply_spin_hits']];
}
ini_set('rsession.spin_us', '0');
var_dump(cycles(20));
ini_set('rsession.spin_us', '100');
[$spins, $hits] = cycles(20);
var_dump($spins > 0, $hits <= $spins);
foreach (['-1', '10001', 'fast'] as $bad) {
    ini_set('rsession.spin_us', $bad);
    session_id('spinusbad');
    set_error_handler(function ($no, $m) { echo $m, "\n"; return true; });
    var_dump(session_start());
    restore_error_handler();
}
// Handler options take the same name.
ini_set('rsession.spin_us', '100');
$h = new RSession\Handler(redis_path('spinus'), ['spin_us' => 0]);
session_set_save_handler($h, false);
var_dump(cycles(5));
session_set_save_handler(new RSession\Handler(redis_path('spinus')), false);
?>
--EXPECTF--
array(2) {
  [0]=>
  int(0)
  [1]=>
  int(0)
}
bool(true)
bool(true)
session_start(): rsession: %sspin_us%s"-1" is not a number of microseconds (0 to 10000)
%A
bool(false)
session_start(): rsession: %sspin_us%s"10001" is not a number of microseconds (0 to 10000)
%A
bool(false)
session_start(): rsession: %sspin_us%s"fast" is not a number of microseconds (0 to 10000)
%A
bool(false)
array(2) {
  [0]=>
  int(0)
  [1]=>
  int(0)
}
