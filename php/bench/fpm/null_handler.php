<?php
// The floor (php/bench/fpm.sh): PHP's session module with a handler that
// stores nothing. read() hands back a 1 KB session as page.php leaves it,
// write() keeps nothing: what remains is the session module's own work
// (ids, cookie, headers, serialize/unserialize) plus one userland call per
// callback, i.e. what no save handler can take away.
final class NullSessionHandler implements SessionHandlerInterface
{
    private static ?string $data = null;

    public function open(string $path, string $name): bool { return true; }
    public function close(): bool { return true; }
    public function read(string $id): string|false
    {
        return self::$data ??= serialize(['n' => 1, 'recent' => str_repeat('ab', 512)]);
    }
    public function write(string $id, string $data): bool { return true; }
    public function destroy(string $id): bool { return true; }
    public function gc(int $max_lifetime): int|false { return 0; }
}
session_set_save_handler(new NullSessionHandler(), true);
