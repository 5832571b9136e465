<?php
// Writes bench/report.md (tables) and bench/chart.svg from the figures that
// php/bench/run.sh recorded in .run/bench/results.tsv.
// Usage: php report.php RESULTS_DIR OUTPUT_DIR
[, $in, $out] = $argv;
$rows = $rss = [];
foreach (file("$in/results.tsv", FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) ?: [] as $line) {
    [$store, $metric, $handler, $value] = explode("\t", $line);
    if ($metric === 'rss') {
        $rss[$store] = [(int) $handler, ...array_map('intval', explode(' ', $value))];
        continue;
    }
    $rows[$metric][$store][$handler] = (float) $value;
}
$machine = trim((string) @file_get_contents("$in/machine.txt"));
$measured = trim((string) @file_get_contents("$in/measured.txt"));
// metric => [title, format, drawn in the chart]
$titles = [
    'cycles_per_s' => ['Locked session cycles per second, one process (start → change 1 KB → write_close); higher is better', '%.0f/s', true],
    'client_cpu_us' => ['CPU time of the PHP process per locked cycle (user + system); lower is better', '%.1f µs', false],
    'server_cpu_us' => ['CPU time of the store server per locked cycle (user + system); lower is better', '%.1f µs', false],
    'handoff_mean_ms' => ['Mean lock handoff delay, 8 processes each holding the lock 20 ms; lower is better', '%.3f ms', true],
];
$md = "# rsession benchmark report\n\nWritten by `make bench` on " . date('Y-m-d H:i T') . ".\n"
    . "Machine: $machine. Every figure is a median over alternating runs of rsession and its peer in one invocation "
    . "(handoff: the median of the runs' mean delays). Shared machine: expect noise of ±20%.\n"
    . ($measured === '' ? '' : "\nThis run measured only: $measured (BENCH_STORES); the other stores' figures are "
        . "those of the previous run, kept in bench/results.tsv.\n")
    . "\n![chart](chart.svg)\n";
foreach ($titles as $metric => [$title, $fmt]) {
    if (empty($rows[$metric])) continue;
    $md .= "\n## $title\n\n| store | rsession | peer | peer figure | rsession ÷ peer |\n|---|--:|---|--:|--:|\n";
    foreach ($rows[$metric] as $store => $handlers) {
        $ours = $handlers['rsession'] ?? null;
        foreach ($handlers as $name => $v) {
            if ($name === 'rsession') continue;
            $md .= sprintf("| %s | %s | %s | %s | %s |\n", $store, $ours === null ? '-' : sprintf($fmt, $ours), $name,
                sprintf($fmt, $v), $ours === null || $v == 0 ? '-' : sprintf('%.2f', $ours / $v));
        }
    }
}
// The registry: rows "store, size", one column per recorded figure.
$registry = [];
foreach ($rows as $metric => $stores) {
    if (str_starts_with($metric, 'registry.')) {
        foreach ($stores as $store => $sizes) {
            foreach ($sizes as $size => $v) {
                $registry["$store\t$size"][substr($metric, 9)] = $v;
            }
        }
    }
}
if ($registry) {
    $md .= "\n## Session registry: one user's 10 sessions among N sessions of N/10 users\n\n"
        . "Median and 99th percentile over 500 users picked at random; `kill_all_sessions()` once, at the end. "
        . "Flat from 10,000 to 100,000 sessions means the cost follows the user's sessions, not the store's.\n\n"
        . "| store | sessions | `user_sessions()` median | p99 | `kill_user_sessions()` median | p99 | `kill_all_sessions()` |\n"
        . "|---|--:|--:|--:|--:|--:|--:|\n";
    $cell = fn (array $r, string $k) => isset($r[$k]) ? sprintf('%.3f ms', $r[$k]) : '-';
    foreach ($registry as $key => $r) {
        [$store, $size] = explode("\t", $key);
        $md .= sprintf("| %s | %s | %s | %s | %s | %s | %s |\n", $store, number_format((int) $size),
            $cell($r, 'user_sessions.median_ms'), $cell($r, 'user_sessions.p99_ms'),
            $cell($r, 'kill_user_sessions.median_ms'), $cell($r, 'kill_user_sessions.p99_ms'), $cell($r, 'kill_all_ms'));
    }
}
// The SQL servers' floor (php/bench/sql_floor.php): each statement of a
// locked cycle alone; the four after the bare round trip are the least any
// locked handler sends.
if (!empty($rows['floor.server_us'])) {
    $md .= "\n## The least a locked cycle costs a SQL server\n\n"
        . "Each statement a locked handler needs, alone, back to back on one connection (text statements, a 1 KB row): "
        . "the time one takes from the client's side and the server CPU it costs. The sum of the last four is the least "
        . "any handler's locked cycle costs the server, rsession's and PDO's alike; a cycle's wall time adds the PHP "
        . "side and a wake-up per round trip.\n\n| store | statement | wall | server CPU |\n|---|---|--:|--:|\n";
    foreach ($rows['floor.server_us'] as $store => $statements) {
        $sum = [0.0, 0.0];
        foreach ($statements as $label => $cpu) {
            $wall = $rows['floor.wall_us'][$store][$label] ?? 0;
            $md .= sprintf("| %s | %s | %.0f µs | %.0f µs |\n", $store, $label, $wall, $cpu);
            if (!str_starts_with($label, 'round trip')) {
                $sum = [$sum[0] + $wall, $sum[1] + $cpu];
            }
        }
        $md .= sprintf("| %s | **lock + read + write + release** | **%.0f µs** | **%.0f µs** |\n", $store, ...$sum);
    }
}
// Write-through (php/bench/writethrough.sh): what PostgreSQL wrote, and the
// increments lost by 8 processes at once.
$wt = [];
foreach ($rows as $metric => $stores) {
    if (str_starts_with($metric, 'wtwrites.')) {
        foreach ($stores['writethrough'] ?? [] as $label => $v) {
            $wt[$label][substr($metric, 9)] = $v;
        }
    }
}
if ($wt) {
    $md .= "\n## Write-through (`memcached | pgsql`): rows PostgreSQL wrote for read-mostly traffic\n\n"
        . "One process, the sessions in turn, 1 request in 20 (`BENCH_WT_CHANGE_EVERY`) changing the data, the others only reading it; the sessions "
        . "were created beforehand (not counted). Counted by PostgreSQL (`pg_stat_user_tables`: rows inserted + updated + "
        . "deleted) on the sessions table and, apart, on rsession's `UNLOGGED` holder table (one row per lock taken in "
        . "PostgreSQL); scans: the index and sequential scans PostgreSQL made of the sessions table (its reads, and the row look-ups of its writes). Goal for the sessions table: "
        . "at most the requests that changed data + 1 per lazy window per session.\n\n"
        . "| handler | requests | changed data | requests/s | sessions-table writes | per 1,000 requests | holder-table writes "
        . "| sessions-table scans | goal |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n";
    foreach ($wt as $label => $r) {
        $holders = str_starts_with($label, 'userland') ? '-' : sprintf('%d', $r['holder_writes']);
        $goal = str_starts_with($label, 'userland') ? '-' : sprintf('≤ %d', $r['goal']);
        $md .= sprintf("| %s | %s | %d | %.0f | %d | %.0f | %s | %d | %s |\n", $label, number_format($r['requests']),
            $r['changed'], $r['requests'] / max(1e-9, $r['seconds']), $r['data_writes'], $r['data_writes'] * 1000 / max(1, $r['requests']), $holders,
            $r['data_scans'], $goal);
    }
}
if (!empty($rows['wtinc.lost_median']['writethrough'])) {
    $expected = $rows['wtinc.expected']['writethrough'] ?? [];
    $md .= sprintf("\n## Write-through: increments lost, %s at once\n\n", key($expected) ?? '?')
        . "Real concurrent PHP processes, each holding the session 1 ms per increment; the counter read from PostgreSQL "
        . "afterwards. rsession locks (in memcached); the userland handler does not.\n\n"
        . "| handler | increments | lost (median of the runs) | fewest | most |\n|---|--:|--:|--:|--:|\n";
    foreach ($rows['wtinc.lost_median']['writethrough'] as $label => $v) {
        $md .= sprintf("| %s | %d | %d | %d | %d |\n", $label, current($expected) ?: 0, $v,
            $rows['wtinc.lost_min']['writethrough'][$label] ?? 0, $rows['wtinc.lost_max']['writethrough'][$label] ?? 0);
    }
}
if ($rss) {
    $md .= "\n## Memory: RSS of one PHP process over locked session cycles\n\n"
        . "| store | cycles | RSS before | RSS after | growth |\n|---|--:|--:|--:|--:|\n";
    foreach ($rss as $store => [$cycles, $before, $after]) {
        $md .= sprintf("| %s | %s | %d kB | %d kB | %d kB |\n", $store, number_format($cycles), $before, $after, $after - $before);
    }
}
// php/bench/fpm.sh writes its own section (kept from the last run that measured it).
if (is_file("$out/fpm.md")) {
    $md .= "\n" . file_get_contents("$out/fpm.md");
}
@mkdir($out, 0755, true);
file_put_contents("$out/report.md", $md);

// Two panels of grouped horizontal bars.
$w = 760; $barH = 18; $y = 30; $svg = '';
foreach ($titles as $metric => [$title, $fmt, $drawn]) {
    if (!$drawn || empty($rows[$metric])) continue;
    $max = max(array_map('max', $rows[$metric])) ?: 1;
    $svg .= sprintf('<text x="10" y="%d" font-weight="bold">%s</text>', $y, htmlspecialchars(explode(';', $title)[0]));
    $y += 12;
    foreach ($rows[$metric] as $store => $handlers) {
        foreach ($handlers as $name => $v) {
            $len = (int) round(($w - 330) * $v / $max);
            $color = $name === 'rsession' ? '#2b7bb9' : '#aaaaaa';
            $svg .= sprintf('<text x="10" y="%d">%s · %s</text><rect x="200" y="%d" width="%d" height="%d" fill="%s"/>'
                . '<text x="%d" y="%d">%s</text>', $y + 13, $store, htmlspecialchars($name), $y, max(1, $len), $barH - 4,
                $color, 206 + $len, $y + 13, sprintf($fmt, $v));
            $y += $barH;
        }
        $y += 6;
    }
    $y += 24;
}
file_put_contents("$out/chart.svg", sprintf('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
    . 'font-family="sans-serif" font-size="12"><rect width="100%%" height="100%%" fill="white"/>%s</svg>', $w, $y, $svg));
