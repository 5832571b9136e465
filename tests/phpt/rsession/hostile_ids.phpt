--TEST--
Hostile session ids never reach the store: nothing is created outside the save dir
--INI--
session.save_handler=rsession
--FILE--
<?php
require __DIR__ . '/setup.inc';
$base = fresh_dir('hostile_ids');
$dir = "$base/store";
mkdir($dir, 0700);
$before = scandir($base);
// Without strict mode an id is refused (PHP itself already replaces ids with
// spaces or CR/LF by a fresh one); with it, a fresh id is used. Never adopted.
foreach ([0, 1] as $strict) {
    ini_set('session.use_strict_mode', $strict);
    foreach (['../x', '../../etc/x', 'a b', "a\r\nb", str_repeat('a', 300), "a\0b", 'a/b', '.x'] as $id) {
        session_save_path($dir);
        session_id($id);
        $ok = @session_start();
        $adopted = session_id() === $id;
        if ($ok) {
            $_SESSION['x'] = 1;
            session_write_close();
        }
        echo $strict, ' ', json_encode($id === str_repeat('a', 300) ? 'a*300' : $id), ': ', $ok ? 'started' : 'refused',
            $adopted && $ok ? ' ADOPTED' : '', "\n";
    }
}
var_dump(scandir($base) === $before);
foreach (scandir($dir) as $f) {
    if ($f[0] !== '.' && !preg_match('/^sess_[A-Za-z0-9,-]+(\.lock)?$/', $f)) echo "unexpected file $f\n";
}
?>
--EXPECT--
0 "..\/x": refused
0 "..\/..\/etc\/x": refused
0 "a b": started
0 "a\r\nb": started
0 "a*300": refused
0 "a\u0000b": refused
0 "a\/b": refused
0 ".x": refused
1 "..\/x": started
1 "..\/..\/etc\/x": started
1 "a b": started
1 "a\r\nb": started
1 "a*300": started
1 "a\u0000b": started
1 "a\/b": started
1 ".x": started
bool(true)
