<?php
// The userland peer of write-through in `make bench`: the hand-written
// memcached-in-front-of-a-database session handler of the classic blog
// posts, step by step:
//   read:   Memcached::get(); on a miss, SELECT from the database and put
//           the row into memcached
//   write:  Memcached::set() always (it refreshes the cache's expiry); the
//           database upsert (MySQL's `REPLACE INTO`; here PostgreSQL's
//           INSERT … ON CONFLICT DO UPDATE) only when the data differs from
//           what read() returned
//   no locks: two requests of one session read the same data and the last
//           write wins
// Loaded with auto_prepend_file; configured by the environment:
//   BENCH_PDO_DSN, BENCH_PDO_USER, BENCH_PDO_PASSWORD (the database, as for
//   php/bench/pdo_session.php), BENCH_MEMCACHED (host:port), BENCH_WT_TABLE.

final class BenchUserlandWriteThrough implements SessionHandlerInterface
{
    private ?PDO $pdo = null;
    private ?Memcached $mc = null;
    /** What read() returned, per id: write() compares against it. */
    private array $read = [];

    public function __construct(private string $dsn, private string $user, private string $password,
        private string $memcached, private string $table)
    {
    }

    private function pdo(): PDO
    {
        return $this->pdo ??= new PDO($this->dsn, $this->user, $this->password, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    }

    private function mc(): Memcached
    {
        if ($this->mc === null) {
            $this->mc = new Memcached();
            [$host, $port] = explode(':', $this->memcached, 2);
            $this->mc->addServer($host, (int) $port);
        }
        return $this->mc;
    }

    public function createTable(): void
    {
        $this->pdo()->exec("CREATE TABLE IF NOT EXISTS {$this->table} (id VARCHAR(128) NOT NULL PRIMARY KEY, "
            . 'data BYTEA NOT NULL, updated_at INTEGER NOT NULL)');
    }

    public function open(string $path, string $name): bool
    {
        return true;
    }

    public function read(string $id): string|false
    {
        $data = $this->mc()->get("sess.$id");
        if ($data === false) {
            $select = $this->pdo()->prepare("SELECT data FROM {$this->table} WHERE id = :id AND updated_at > :since");
            $select->bindValue(':id', $id);
            $select->bindValue(':since', time() - (int) ini_get('session.gc_maxlifetime'), PDO::PARAM_INT);
            $select->execute();
            $row = $select->fetch(PDO::FETCH_NUM);
            $data = $row ? (is_resource($row[0]) ? stream_get_contents($row[0]) : $row[0]) : '';
            if ($row) {
                $this->mc()->set("sess.$id", $data, (int) ini_get('session.gc_maxlifetime'));
            }
        }
        $this->read[$id] = $data;
        return $data;
    }

    public function write(string $id, string $data): bool
    {
        $this->mc()->set("sess.$id", $data, (int) ini_get('session.gc_maxlifetime'));
        if (($this->read[$id] ?? null) !== $data) {
            $upsert = $this->pdo()->prepare("INSERT INTO {$this->table} (id, data, updated_at) VALUES (:id, :data, :time) "
                . 'ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at');
            $upsert->bindValue(':id', $id);
            $upsert->bindValue(':data', $data, PDO::PARAM_LOB);
            $upsert->bindValue(':time', time(), PDO::PARAM_INT);
            $upsert->execute();
            $this->read[$id] = $data;
        }
        return true;
    }

    public function close(): bool
    {
        return true;
    }

    public function destroy(string $id): bool
    {
        $this->mc()->delete("sess.$id");
        $delete = $this->pdo()->prepare("DELETE FROM {$this->table} WHERE id = :id");
        $delete->bindValue(':id', $id);
        $delete->execute();
        unset($this->read[$id]);
        return true;
    }

    public function gc(int $max_lifetime): int|false
    {
        return $this->pdo()->exec("DELETE FROM {$this->table} WHERE updated_at < " . (time() - $max_lifetime));
    }
}

$benchWt = new BenchUserlandWriteThrough(
    getenv('BENCH_PDO_DSN') ?: die("BENCH_PDO_DSN is not set\n"),
    getenv('BENCH_PDO_USER') ?: '',
    getenv('BENCH_PDO_PASSWORD') ?: '',
    getenv('BENCH_MEMCACHED') ?: die("BENCH_MEMCACHED is not set\n"),
    getenv('BENCH_WT_TABLE') ?: 'bench_userland_sessions'
);
if (getenv('BENCH_WT_CREATE') === '1') {
    $benchWt->createTable();
}
session_set_save_handler($benchWt, true);
unset($benchWt);
