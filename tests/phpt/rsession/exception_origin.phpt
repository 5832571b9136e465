--TEST--
RSession\Exception says where it was thrown: file, line and stack trace of the calling code
--FILE--
<?php
function login() { RSession\set_user(1); }
try {
    login();
} catch (RSession\Exception $e) {
    var_dump(basename($e->getFile()), $e->getLine(), $e->getTrace()[0]['function'], $e->getTrace()[1]['function']);
}
$e = new RSession\Exception('by hand', 7);
var_dump($e->getLine(), $e->getCode(), $e instanceof RuntimeException);
?>
--EXPECT--
string(20) "exception_origin.php"
int(2)
string(17) "RSession\set_user"
string(5) "login"
int(8)
int(7)
bool(true)
