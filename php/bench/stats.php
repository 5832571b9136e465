<?php
// Order statistics shared by the bench scripts, so every report's median and
// percentiles mean the same thing.

/** The median of a list (the mean of the middle two for an even count); null when empty. */
function median(array $values): ?float
{
    sort($values);
    $n = count($values);
    if ($n === 0) {
        return null;
    }
    return $n % 2 ? $values[intdiv($n, 2)] : ($values[$n / 2 - 1] + $values[$n / 2]) / 2;
}

/** The nearest-rank q-quantile of a list (0 < q ≤ 1); null when empty. */
function quantile(array $values, float $q): ?float
{
    sort($values);
    $n = count($values);
    return $n ? $values[min($n - 1, max(0, (int) ceil($q * $n) - 1))] : null;
}
