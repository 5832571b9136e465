<?php
// A Moodle-sized session: about 200 KB of realistic serialize() output (course
// caches, navigation, preferences), of which a little changes per request.
session_start();
if (!isset($_SESSION['cache'])) {
    $cache = [];
    for ($i = 0; $i < 900; $i++) {
        $cache["course$i"] = ['id' => $i, 'fullname' => "Introduction to topic $i, section " . ($i % 17),
            'shortname' => "T$i", 'visible' => $i % 3 !== 0, 'grade' => round($i / 7, 3),
            'modules' => [$i * 3, $i * 3 + 1, $i * 3 + 2], 'lastaccess' => 1700000000 + $i * 61];
    }
    $_SESSION['cache'] = $cache;
}
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
$_SESSION['recent'] = bin2hex(random_bytes(512));
echo $_SESSION['n'], "\n";
