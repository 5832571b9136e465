<?php
// "Your sessions": every live session of the logged-in user, from
// RSession\user_sessions() (the store's per-user index, so the cost grows
// with this user's sessions only), each with a button that ends it, and one
// that ends all the others, as after a password change.
require __DIR__ . '/layout.php';

start_session();
$user = $_SESSION['user'] ?? null;
if ($user === null) {
    $_SESSION['flash'] = 'Log in first to see your sessions.';
    redirect('/login.php');
}

if (($_SERVER['REQUEST_METHOD'] ?? '') === 'POST') {
    if (!csrf_ok()) {
        $_SESSION['flash'] = 'The form expired (its token did not match this session). Nothing was ended.';
    } elseif (isset($_POST['end_others'])) {
        $n = RSession\kill_user_sessions($user, session_id());
        $_SESSION['flash'] = sprintf('Ended %d other session%s.', $n, $n === 1 ? '' : 's');
    } elseif (is_string($_POST['end'] ?? null)) {
        $id = $_POST['end'];
        // Only a session of this user: the id comes from the browser, so look
        // it up in the user's own list instead of trusting it.
        $mine = array_column(RSession\user_sessions($user), 'id');
        if ($id === session_id()) {
            $_SESSION['flash'] = 'That is this session: use Log out to end it.';
        } elseif (!in_array($id, $mine, true)) {
            $_SESSION['flash'] = 'No such session of yours (it may have ended already).';
        } else {
            $_SESSION['flash'] = RSession\kill_session($id) ? 'Session ended.' : 'It had ended already.';
        }
    }
    redirect('/sessions.php');
}

$sessions = RSession\user_sessions($user);
usort($sessions, fn ($a, $b) => $b['last_access'] <=> $a['last_access']);
$current = session_id();
$flash = $_SESSION['flash'] ?? null;
unset($_SESSION['flash']);
$token = csrf_field();
session_write_close();

page_start('Your sessions');
if ($flash !== null) {
    echo '<p class="msg">', h($flash), '</p>';
}
echo '<p>Sessions of <b>', h($user), '</b>, most recently seen first, by <code>RSession\user_sessions()</code>:</p>',
    '<table><tr><th>session</th><th>created</th><th>last seen</th><th>idle timeout</th><th>first IP</th>',
    '<th>last IP</th><th></th></tr>';
foreach ($sessions as $s) {
    $here = $s['id'] === $current;
    echo '<tr><td><code>', h(substr($s['id'], 0, 8)), '…</code>', $here ? ' <b>(this one)</b>' : '', '</td>',
        '<td>', h(date('Y-m-d H:i:s', $s['created'])), '</td>',
        '<td>', h(date('Y-m-d H:i:s', $s['last_access'])), '</td>',
        '<td class="n">', $s['timeout'] === 0 ? 'never' : h($s['timeout']) . ' s', '</td>',
        '<td>', h($s['first_ip'] ?? '-'), '</td><td>', h($s['last_ip'] ?? '-'), '</td><td>';
    if ($here) {
        echo '<form class="inline" method="post" action="/login.php">', $token,
            '<button name="logout" value="1">Log out</button></form>';
    } else {
        echo '<form class="inline" method="post">', $token, '<button name="end" value="', h($s['id']),
            '">End</button></form>';
    }
    echo '</td></tr>';
}
echo '</table>';
if (count($sessions) > 1) {
    echo '<form method="post">', $token, '<button name="end_others" value="1">End all other sessions</button></form>';
}
echo '<p class="note">A session ended here is gone at once, even if a request of it is running right now: ',
    'that request\'s write at its end does not bring it back (the other browser finds itself logged out).</p>';
page_end();
