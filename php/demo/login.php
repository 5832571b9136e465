<?php
// Log in as a named user (no password: this is a demo of the session side of
// a login) and log out. A login changes the session id first, so an id an
// attacker planted before the login is worth nothing after it, then tells
// rsession whose session this is: RSession\set_user() files it in the user's
// index, which the "Your sessions" page lists.
require __DIR__ . '/layout.php';

start_session();
$error = null;
if (($_SERVER['REQUEST_METHOD'] ?? '') === 'POST') {
    $name = is_string($_POST['name'] ?? null) ? trim($_POST['name']) : '';
    if (!csrf_ok()) {
        $error = 'The form expired (its token did not match this session). Please try again.';
    } elseif (isset($_POST['logout'])) {
        // Ends this session everywhere: data, lock and the user's index entry.
        session_destroy();
        session_id(session_create_id());    // a fresh session for the flash message
        session_start();
        $_SESSION['flash'] = 'You are logged out.';
        redirect('/login.php');
    } elseif ($name === '' || strlen($name) > 64 || !preg_match('/^[\p{L}\p{N} ._@-]+$/u', $name)) {
        $error = 'A name is 1 to 64 letters, digits, spaces or . _ @ -.';
    } else {
        session_regenerate_id(true);        // new id at every change of privilege
        RSession\set_user($name);
        $_SESSION['user'] = $name;
        $_SESSION['logged_in_at'] = time();
        unset($_SESSION['csrf']);           // a new token for the new identity
        $_SESSION['flash'] = 'Logged in as ' . $name . '.';
        redirect('/sessions.php');
    }
}
$flash = $_SESSION['flash'] ?? null;
unset($_SESSION['flash']);
$token = csrf_field();
session_write_close();

page_start(isset($_SESSION['user']) ? 'Log out' : 'Log in');
if ($flash !== null) {
    echo '<p class="msg">', h($flash), '</p>';
}
if ($error !== null) {
    echo '<p class="msg" style="background:#fbeaea;border-color:#eac4c4">', h($error), '</p>';
}
if (isset($_SESSION['user'])) {
    echo '<p>You are logged in as <b>', h($_SESSION['user']), '</b>.</p>',
        '<form method="post">', $token, '<button name="logout" value="1">Log out</button></form>';
} else {
    echo '<p>Log in under any name. Then do it again in another browser (or a private window) under the same ',
        'name: <a href="/sessions.php">Your sessions</a> lists both, and either can end the other.</p>',
        '<form method="post">', $token, '<label>Name <input name="name" maxlength="64" required autofocus></label> ',
        '<button>Log in</button></form>';
}
page_end();
