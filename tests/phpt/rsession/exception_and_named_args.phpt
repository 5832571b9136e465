--TEST--
RSession\Exception can be thrown by user code; RSession\Handler takes named arguments as the contract names them
--FILE--
<?php
require __DIR__ . '/setup.inc';
try {
    throw new RSession\Exception('boom', 7);
} catch (RuntimeException $e) {
    echo get_class($e), ' ', $e->getMessage(), ' ', $e->getCode(), "\n";
}
$h = new RSession\Handler(savePath: fresh_dir('named_args'), options: ['lock_wait_ms' => 5]);
var_dump($h instanceof SessionHandlerInterface);
$names = fn($m) => implode(',', array_map(fn($p) => $p->getName(), (new ReflectionMethod(RSession\Handler::class, $m))->getParameters()));
echo $names('__construct'), ' ', $names('open'), "\n";
?>
--EXPECT--
RSession\Exception boom 7
bool(true)
savePath,options path,name
