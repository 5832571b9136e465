--TEST--
An error handler that calls RSession\ functions while rsession raises a notice, or dies of a fatal error, never hangs the request (native handler and RSession\Handler)
--FILE--
<?php
require __DIR__ . '/setup.inc';
$dir = fresh_dir('error_handler_reentry');
$save = var_export($dir, true);
/** Runs $code in a child; kills it after 15 s and says "hung". */
function bounded(string $code): string
{
    $child = start_child($code);
    [$p, $out] = $child;
    $until = microtime(true) + 15 * slow();
    while (proc_get_status($p)['running']) {
        if (microtime(true) > $until) {
            proc_terminate($p, 9);
            return "hung\n";
        }
        usleep(10000);
    }
    return finish_child($child);
}
$handlers = [
    'native' => '',
    'class' => "session_set_save_handler(new RSession\\Handler($save, ['read_only' => true]), true);",
];
foreach ($handlers as $name => $install) {
    // A notice (changes to a read-only session are not saved) raised while
    // the session is written; the error handler calls set_timeout().
    echo "$name: ", bounded("
        session_save_path($save);
        ini_set('rsession.read_only', '1');
        $install
        session_id('reentry1');
        session_start();
        \$_SESSION['x'] = 1;
        set_error_handler(function (\$no, \$msg) {
            try {
                RSession\\set_timeout(60);
            } catch (RSession\\Exception \$e) {
                echo 'caught: ', \$e->getMessage(), ' | ';
            }
            return true;
        });
        session_write_close();
        echo 'done', PHP_EOL;
        echo ob_get_clean();");
    // A fatal error inside the error handler during the write at shutdown:
    // PHP still closes the session; nothing may be left locked.
    echo "$name fatal: ", bounded("
        session_save_path($save);
        ini_set('rsession.read_only', '1');
        $install
        session_id('reentry2');
        session_start();
        \$_SESSION['x'] = 1;
        set_error_handler(function (\$no, \$msg) { echo 'dying', PHP_EOL; no_such_function(); });
        ob_end_flush();");
}
// The sessions are not left locked.
session_save_path($dir);
var_dump(RSession\lock_info('reentry1'), RSession\lock_info('reentry2'));
?>
--EXPECTF--
native: caught: rsession: the session is read-only in this request (rsession.read_only or a lock timeout): its metadata cannot change | done
native fatal: dying
%AFatal error: Uncaught Error: Call to undefined function no_such_function()%A
class: caught: rsession: the session is read-only in this request (rsession.read_only or a lock timeout): its metadata cannot change | done
class fatal: dying
%AFatal error: Uncaught Error: Call to undefined function no_such_function()%A
NULL
NULL
