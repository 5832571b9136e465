--TEST--
Demo app (php/demo under php -S): log in, "Your sessions" lists a user's sessions, ends one, ends all others; CSRF and foreign ids refused
--FILE--
<?php
require __DIR__ . '/setup.inc';
$save = registry_save_path('demo');

// A free port: bind to 0, read what the kernel gave, let it go.
$probe = stream_socket_server('tcp://127.0.0.1:0');
$port = (int) substr(strrchr(stream_socket_get_name($probe, false), ':'), 1);
fclose($probe);
// In a process group of its own (setsid), so that stopping it also stops
// the workers php -S forks.
$cmd = ['setsid', PHP_BINARY, '-n', '-d', 'extension=' . getenv('RSESSION_EXT'), '-d', 'session.save_handler=rsession',
    '-d', "session.save_path=\"$save\"", '-S', "127.0.0.1:$port", '-t', __DIR__ . '/../../../php/demo'];
$server = proc_open($cmd, [1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes,
    null, ['PHP_CLI_SERVER_WORKERS' => '2'] + getenv());
$until = microtime(true) + 10 * slow();
while (!($c = @fsockopen('127.0.0.1', $port)) && microtime(true) < $until) {
    usleep(20000);
}
$c ? fclose($c) : print("the demo server did not start\n");

/** A browser: its own cookie; returns [status, Location, body]. */
final class Browser
{
    public string $cookie = '';
    public function __construct(private int $port) {}
    public function go(string $path, ?array $post = null): array
    {
        $headers = $this->cookie === '' ? [] : ['Cookie: PHPSESSID=' . $this->cookie];
        $opts = ['method' => 'GET', 'follow_location' => 0, 'ignore_errors' => true, 'timeout' => 10];
        if ($post !== null) {
            $opts['method'] = 'POST';
            $opts['content'] = http_build_query($post);
            $headers[] = 'Content-Type: application/x-www-form-urlencoded';
        }
        $opts['header'] = $headers;
        $body = file_get_contents("http://127.0.0.1:{$this->port}$path", false, stream_context_create(['http' => $opts]));
        $status = 0;
        $location = null;
        foreach ($http_response_header as $h) {
            if (preg_match('~^HTTP/\S+ (\d+)~', $h, $m)) $status = (int) $m[1];
            if (preg_match('~^Set-Cookie: PHPSESSID=([^;]*)~i', $h, $m)) $this->cookie = $m[1];
            if (preg_match('~^Location: (.*)~i', $h, $m)) $location = trim($m[1]);
        }
        return [$status, $location, $body];
    }
    public function token(): string
    {
        preg_match('~name="csrf" value="([0-9a-f]+)"~', $this->go('/login.php')[2], $m);
        return $m[1] ?? '';
    }
    public function login(string $name): array
    {
        return $this->go('/login.php', ['csrf' => $this->token(), 'name' => $name]);
    }
    /** The flash message and the session ids on "Your sessions". */
    public function sessions(): array
    {
        [$status, $location, $body] = $this->go('/sessions.php');
        if ($status !== 200) return [$status, $location];
        preg_match('~class="msg">([^<]*)~', $body, $m);
        preg_match_all('~name="end" value="([^"]+)"~', $body, $ends);
        return [$m[1] ?? null, substr_count($body, '(this one)'), $ends[1]];
    }
}

$a = new Browser($port); $b = new Browser($port); $c = new Browser($port);
$before = $a->token() === '' ? 'no token' : $a->cookie;
var_dump($a->login('alice'));                          // 303 to sessions
var_dump($a->cookie !== $before);                      // a new id at login
$b->login('alice');
$c->login('bob');
[$flash, $here, $others] = $a->sessions();
var_dump($flash, $here, $others === [$b->cookie]);
var_dump($a->sessions()[0]);                           // the flash shows once

$t = $a->token();
$a->go('/sessions.php', ['csrf' => 'forged', 'end' => $b->cookie]);
var_dump($a->sessions()[0]);
$a->go('/sessions.php', ['csrf' => $t, 'end' => $c->cookie]);   // bob's session: not alice's to end
var_dump($a->sessions()[0], $c->sessions()[1]);
$a->go('/sessions.php', ['csrf' => $t, 'end' => $b->cookie]);
var_dump($a->sessions()[0], $b->go('/sessions.php')[1]);        // b is logged out

$b->login('alice');
$d = new Browser($port);
$d->login('alice');
var_dump(count($a->sessions()[2]));
$a->go('/sessions.php', ['csrf' => $t, 'end_others' => '1']);
var_dump($a->sessions(), $d->go('/sessions.php')[0]);
ini_set('session.save_path', $save);
var_dump(RSession\user_sessions('bob') !== [] ? 'bob kept' : 'bob gone');
var_dump(count(RSession\user_sessions('alice')));
$a->go('/login.php', ['csrf' => $t, 'logout' => '1']);
var_dump(count(RSession\user_sessions('alice')), $a->go('/sessions.php')[1]);
exec('kill -TERM -' . proc_get_status($server)['pid']);
proc_close($server);
?>
--EXPECT--
array(3) {
  [0]=>
  int(303)
  [1]=>
  string(13) "/sessions.php"
  [2]=>
  string(0) ""
}
bool(true)
string(19) "Logged in as alice."
int(1)
bool(true)
NULL
string(75) "The form expired (its token did not match this session). Nothing was ended."
string(53) "No such session of yours (it may have ended already)."
int(1)
string(14) "Session ended."
string(10) "/login.php"
int(2)
array(3) {
  [0]=>
  string(23) "Ended 2 other sessions."
  [1]=>
  int(1)
  [2]=>
  array(0) {
  }
}
int(303)
string(8) "bob kept"
int(1)
int(0)
string(10) "/login.php"
