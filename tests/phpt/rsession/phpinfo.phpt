--TEST--
phpinfo() shows the rsession section with version, stores and INI entries; INI defaults
--FILE--
<?php
ob_start();
phpinfo(INFO_MODULES);
$info = ob_get_clean();
foreach (['rsession support => enabled', 'save handler => rsession', 'stores => files',
          'rsession.locking => 1 => 1', 'rsession.lock_wait_ms => 30000 => 30000',
          'rsession.lock_ttl_ms => 10000 => 10000', 'rsession.lock_failure => fail => fail',
          'rsession.read_only => 0 => 0', 'rsession.spin_us => 100 => 100'] as $needle) {
    echo $needle, ': ', str_contains($info, $needle) ? 'yes' : 'NO', "\n";
}
var_dump(preg_match('/^version => \d+\.\d+\.\d+$/m', $info) === 1);
var_dump(ini_get('rsession.lock_wait_ms'), ini_set('rsession.lock_wait_ms', '5'), ini_get('rsession.lock_wait_ms'));
var_dump(in_array('rsession', explode(' ', 'x ' . implode(' ', get_loaded_extensions()))));
$deps = (new ReflectionExtension('rsession'))->getDependencies();
var_dump($deps);
?>
--EXPECT--
rsession support => enabled: yes
save handler => rsession: yes
stores => files: yes
rsession.locking => 1 => 1: yes
rsession.lock_wait_ms => 30000 => 30000: yes
rsession.lock_ttl_ms => 10000 => 10000: yes
rsession.lock_failure => fail => fail: yes
rsession.read_only => 0 => 0: yes
rsession.spin_us => 100 => 100: yes
bool(true)
string(5) "30000"
string(5) "30000"
string(1) "5"
bool(true)
array(1) {
  ["session"]=>
  string(8) "Required"
}
