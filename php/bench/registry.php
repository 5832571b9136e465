<?php
// The session registry at scale: fills the store named by session.save_path
// with SESSIONS sessions of SESSIONS/10 users (10 each, through real
// session_start() cycles with RSession\set_user()), then times, for SAMPLES
// random users of 10 sessions each, RSession\user_sessions() and
// RSession\kill_user_sessions(), and at the end RSession\kill_all_sessions().
// Prints one line of JSON (times in ms).
// Usage: php [ini...] registry.php SESSIONS [SAMPLES]
ob_start();
const PER_USER = 10;
$total = (int) ($argv[1] ?? 10000);
$samples = (int) ($argv[2] ?? 200);
$users = intdiv($total, PER_USER);
if ($users < 2 * $samples) {
    fwrite(STDERR, "need at least " . 2 * $samples * PER_USER . " sessions for $samples samples\n");
    exit(2);
}

function fail(string $what): never
{
    fwrite(STDERR, "registry bench: $what; the figures would be meaningless\n");
    exit(1);
}

require __DIR__ . '/stats.php';

/** Median, 99th percentile and maximum of a list of ms. */
function summary(array $ms): array
{
    return ['median_ms' => median($ms), 'p99_ms' => quantile($ms, 0.99), 'max_ms' => max($ms)];
}

$t0 = hrtime(true);
for ($u = 0; $u < $users; $u++) {
    for ($k = 0; $k < PER_USER; $k++) {
        session_id(sprintf('bench%07dx%02d%s', $u, $k, str_repeat('r', 16)));
        if (!session_start()) {
            fail('session_start() failed while filling');
        }
        RSession\set_user("user$u");
        $_SESSION['user'] = "user$u";
        session_write_close();
    }
}
$fill = (hrtime(true) - $t0) / 1e9;
sleep(1);   // let the store settle (Redis rehashes its keyspace as it grows)

// Distinct users for the two measurements, so a kill never meets a user
// that an earlier sample already emptied.
$picked = array_rand(range(0, $users - 1), 2 * $samples);
shuffle($picked);
$list = $kill = [];
foreach (array_slice($picked, 0, $samples) as $u) {
    $t = hrtime(true);
    $found = RSession\user_sessions("user$u");
    $list[] = (hrtime(true) - $t) / 1e6;
    if (count($found) !== PER_USER) {
        fail("user_sessions(user$u) found " . count($found) . ' sessions, not ' . PER_USER);
    }
}
foreach (array_slice($picked, $samples) as $u) {
    $t = hrtime(true);
    $n = RSession\kill_user_sessions("user$u");
    $kill[] = (hrtime(true) - $t) / 1e6;
    if ($n !== PER_USER) {
        fail("kill_user_sessions(user$u) ended $n sessions, not " . PER_USER);
    }
}

$t = hrtime(true);
$killed = RSession\kill_all_sessions();
$killAll = (hrtime(true) - $t) / 1e6;
$left = RSession\user_sessions('user' . $picked[0]);
if ($left !== []) {
    fail('sessions outlived kill_all_sessions()');
}
ob_end_clean();
echo json_encode([
    'sessions' => $total,
    'users' => $users,
    'fill_per_second' => $total / $fill,
    'user_sessions' => summary($list),
    'kill_user_sessions' => summary($kill),
    'kill_all_ms' => $killAll,
    'kill_all_count' => $killed,
]), "\n";
