--TEST--
Strict mode: unknown and hostile ids are never adopted
--INI--
session.use_strict_mode=1
--FILE--
<?php
require __DIR__ . '/setup.inc';
session_save_path(test_save_path('strict_mode'));
$ids = [
    'unknown' => 'unknownid0123456789',
    'traversal' => '../x',
    'space' => 'a b',
    'crlf' => "ab\r\ncd",
    'long' => str_repeat('a', 300),
    'slash' => 'a/b',
    'nul' => "ab\0cd",
];
foreach ($ids as $name => $id) {
    session_id($id);
    $ok = @session_start();
    $new = session_id();
    echo $name, ': ', var_export($ok, true), ' ', $new === $id ? 'ADOPTED' : 'new id', ' ',
        preg_match('/^[a-zA-Z0-9,-]{22,256}$/', $new) ? 'valid' : 'invalid', "\n";
    session_write_close();
}
?>
--EXPECT--
unknown: true new id valid
traversal: true new id valid
space: true new id valid
crlf: true new id valid
long: true new id valid
slash: true new id valid
nul: true new id valid
