<?php
// Shared frame of the demo pages: escaping, the page header/footer and a
// session_start() that reports how long this request waited for the lock.
// Every page starts the session itself, so the lock behaviour is visible page
// by page. Add a page to the menu by appending to NAV.

const NAV = [
    '/'             => 'Counter',
    '/slow.php'     => 'Slow page (holds the lock 3 s)',
    '/settings.php' => 'Settings',
    '/login.php'    => 'Log in',
    '/sessions.php' => 'Your sessions',
];

/** HTML-escapes any value (non-strings as JSON). */
function h(mixed $v): string
{
    if (is_bool($v) || $v === null) {
        $v = var_export($v, true);
    }
    return htmlspecialchars(is_string($v) ? $v : json_encode($v), ENT_QUOTES | ENT_SUBSTITUTE);
}

/** Wall-clock time with milliseconds, for timelines. */
function clock(float $t): string
{
    return date('H:i:s', (int) $t) . sprintf('.%03d', (int) (fmod($t, 1) * 1000));
}

/**
 * session_start() that measures how long this request waited for the session
 * lock, two ways: the growth of this worker's RSession\stats()['lock_wait_ms']
 * counter (it counts for the whole process, so take the difference) and the
 * wall clock around the call. Sends a 503 page and exits when the session
 * cannot start (e.g. rsession.lock_wait_ms ran out: the log names the holder).
 *
 * @return array{asked: float, got: float, wait_ms: int, stats_wait_ms: int}
 */
function start_session(array $options = []): array
{
    $before = RSession\stats()['lock_wait_ms'];
    $asked = microtime(true);
    if (!session_start($options)) {
        http_response_code(503);
        page_start('Session unavailable');
        echo '<p>The session could not be started (did the lock wait run out?). ',
            'The server log has the <code>rsession:</code> warning naming the lock holder.</p>';
        page_end();
        exit;
    }
    $got = microtime(true);
    return [
        'asked' => $asked,
        'got' => $got,
        'wait_ms' => (int) round(($got - $asked) * 1000),
        'stats_wait_ms' => RSession\stats()['lock_wait_ms'] - $before,
    ];
}

/**
 * The form token of this session (created on first use). Every form that
 * changes something carries it, so another site cannot post to ours with the
 * visitor's cookie. Needs an active session.
 */
function csrf_token(): string
{
    return $_SESSION['csrf'] ??= bin2hex(random_bytes(16));
}

/** A hidden form field with csrf_token(). */
function csrf_field(): string
{
    return '<input type="hidden" name="csrf" value="' . h(csrf_token()) . '">';
}

/** True for a POST whose form token matches this session's. */
function csrf_ok(): bool
{
    return ($_SERVER['REQUEST_METHOD'] ?? '') === 'POST' && isset($_SESSION['csrf'], $_POST['csrf'])
        && is_string($_POST['csrf']) && hash_equals($_SESSION['csrf'], $_POST['csrf']);
}

/** Ends the request with a redirect (POST, then redirect, then GET). */
function redirect(string $to): never
{
    session_write_close();
    header('Location: ' . $to, true, 303);
    exit;
}

function page_start(string $title): void
{
    echo '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<title>', h($title), ' · rsession demo</title><style>',
        'body{font:15px/1.5 system-ui,sans-serif;max-width:48em;margin:0 auto;padding:0 1em 2em;color:#222}',
        'header{border-bottom:1px solid #ddd;padding:.8em 0;margin-bottom:1em}',
        'header b{margin-right:1.5em}nav a{margin-right:1em}nav a.on{font-weight:bold;color:#222;text-decoration:none}',
        'table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ddd;padding:.25em .7em;text-align:left;vertical-align:top}',
        'th{background:#f6f6f6;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}',
        '.big{font-size:3.5em;font-weight:bold;margin:.2em 0}.note{color:#666;font-size:.9em}',
        'code{background:#f3f3f3;padding:0 .25em}.msg{background:#eef6ee;border:1px solid #cde3cd;padding:.4em .8em}'
        . 'form.inline{display:inline;margin:0}</style></head><body><header><b>rsession demo</b><nav>';
    $here = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
    foreach (NAV as $href => $label) {
        printf('<a href="%s"%s>%s</a>', h($href), $href === $here ? ' class="on"' : '', h($label));
    }
    $user = $_SESSION['user'] ?? null;     // still readable after session_write_close()
    echo '</nav>', $user === null ? '' : ' <span class="note">logged in as <b>' . h($user) . '</b></span>',
        '</header><h1>', h($title), '</h1>';
}

function page_end(): void
{
    $id = session_id();
    echo '<p class="note">Session <code>', h($id === '' ? '(none)' : substr($id, 0, 8) . '…'),
        '</code> · save handler <b>', h(ini_get('session.save_handler')), '</b> · path <code>',
        h(session_save_path()), '</code> · worker pid ', h(getmypid()), '</p></body></html>';
}
