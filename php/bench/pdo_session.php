<?php
// The userland peer of the SQL stores in `make bench`: a session handler
// over PDO that follows Symfony's PdoSessionHandler (symfony/http-foundation
// 7.x) step by step, in its two locking modes:
//   advisory       read: pg_advisory_lock / GET_LOCK(key, 50), then SELECT;
//                  write: one upsert; close: pg_advisory_unlock / RELEASE_LOCK
//   transactional  read: BEGIN (MySQL: READ COMMITTED first), SELECT … FOR
//                  UPDATE (a missing row is inserted empty to take the row
//                  lock, as without strict mode); write: upsert in the
//                  transaction; close: COMMIT
// Loaded with auto_prepend_file; configured by the environment:
//   BENCH_PDO_DSN, BENCH_PDO_USER, BENCH_PDO_PASSWORD, BENCH_PDO_MODE.

final class BenchPdoSessionHandler implements SessionHandlerInterface, SessionUpdateTimestampHandlerInterface
{
    private ?PDO $pdo = null;
    private string $driver;
    private array $unlock = [];
    private bool $inTransaction = false;

    public function __construct(private string $dsn, private string $user, private string $password, private string $mode)
    {
        $this->driver = explode(':', $dsn, 2)[0];
    }

    private function pdo(): PDO
    {
        return $this->pdo ??= new PDO($this->dsn, $this->user, $this->password, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    }

    public function createTable(): void
    {
        $this->pdo()->exec($this->driver === 'mysql'
            ? 'CREATE TABLE IF NOT EXISTS sessions (sess_id VARBINARY(128) NOT NULL PRIMARY KEY, sess_data MEDIUMBLOB NOT NULL, '
              . 'sess_lifetime INTEGER UNSIGNED NOT NULL, sess_time INTEGER UNSIGNED NOT NULL, INDEX sess_lifetime_idx (sess_lifetime)) '
              . 'COLLATE utf8mb4_bin, ENGINE = InnoDB'
            : 'CREATE TABLE IF NOT EXISTS sessions (sess_id VARCHAR(128) NOT NULL PRIMARY KEY, sess_data BYTEA NOT NULL, '
              . 'sess_lifetime INTEGER NOT NULL, sess_time INTEGER NOT NULL)');
        if ($this->driver === 'pgsql') {
            $this->pdo()->exec('CREATE INDEX IF NOT EXISTS sess_lifetime_idx ON sessions (sess_lifetime)');
        }
    }

    public function open(string $path, string $name): bool
    {
        $this->pdo();
        return true;
    }

    public function read(string $id): string
    {
        $pdo = $this->pdo();
        if ($this->mode === 'transactional') {
            if ($this->driver === 'mysql') {
                $pdo->exec('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
            }
            $pdo->beginTransaction();
            $this->inTransaction = true;
        } else {
            $this->unlock[] = $this->advisoryLock($id);
        }
        $select = $pdo->prepare('SELECT sess_data, sess_lifetime FROM sessions WHERE sess_id = :id'
            . ($this->mode === 'transactional' ? ' FOR UPDATE' : ''));
        $select->bindParam(':id', $id);
        while (true) {
            $select->execute();
            $row = $select->fetch(PDO::FETCH_NUM);
            if ($row) {
                $data = is_resource($row[0]) ? stream_get_contents($row[0]) : $row[0];
                return $row[1] < time() ? '' : $data;
            }
            if ($this->mode !== 'transactional') {
                return '';
            }
            // No row to lock: insert an empty one (expired at once) to take
            // the row lock; a racing insert makes us read again.
            try {
                $insert = $pdo->prepare('INSERT INTO sessions (sess_id, sess_data, sess_lifetime, sess_time) VALUES (:id, :data, :expiry, :time)');
                $insert->bindParam(':id', $id);
                $insert->bindValue(':data', '', PDO::PARAM_LOB);
                $insert->bindValue(':expiry', time(), PDO::PARAM_INT);
                $insert->bindValue(':time', time(), PDO::PARAM_INT);
                $insert->execute();
                return '';
            } catch (PDOException $e) {
                if (!str_starts_with((string) $e->getCode(), '23')) {
                    throw $e;
                }
                $pdo->rollBack();
                $pdo->beginTransaction();
            }
        }
    }

    private function advisoryLock(string $id): PDOStatement
    {
        $pdo = $this->pdo();
        if ($this->driver === 'mysql') {
            $key = substr($id, 0, 64);
            $lock = $pdo->prepare('SELECT GET_LOCK(:key, 50)');
            $lock->bindValue(':key', $key);
            $lock->execute();
            $release = $pdo->prepare('DO RELEASE_LOCK(:key)');
            $release->bindValue(':key', $key);
            return $release;
        }
        $key = unpack('q', substr(sha1($id, true), 0, 8))[1];
        $lock = $pdo->prepare('SELECT pg_advisory_lock(:key)');
        $lock->bindValue(':key', $key, PDO::PARAM_INT);
        $lock->execute();
        $release = $pdo->prepare('SELECT pg_advisory_unlock(:key)');
        $release->bindValue(':key', $key, PDO::PARAM_INT);
        return $release;
    }

    public function write(string $id, string $data): bool
    {
        $expiry = time() + (int) ini_get('session.gc_maxlifetime');
        $sql = $this->driver === 'mysql'
            ? 'INSERT INTO sessions (sess_id, sess_data, sess_lifetime, sess_time) VALUES (:id, :data, :expiry, :time) '
              . 'ON DUPLICATE KEY UPDATE sess_data = VALUES(sess_data), sess_lifetime = VALUES(sess_lifetime), sess_time = VALUES(sess_time)'
            : 'INSERT INTO sessions (sess_id, sess_data, sess_lifetime, sess_time) VALUES (:id, :data, :expiry, :time) '
              . 'ON CONFLICT (sess_id) DO UPDATE SET (sess_data, sess_lifetime, sess_time) = (EXCLUDED.sess_data, EXCLUDED.sess_lifetime, EXCLUDED.sess_time)';
        $merge = $this->pdo()->prepare($sql);
        $merge->bindParam(':id', $id);
        $merge->bindParam(':data', $data, PDO::PARAM_LOB);
        $merge->bindValue(':expiry', $expiry, PDO::PARAM_INT);
        $merge->bindValue(':time', time(), PDO::PARAM_INT);
        $merge->execute();
        return true;
    }

    public function updateTimestamp(string $id, string $data): bool
    {
        $update = $this->pdo()->prepare('UPDATE sessions SET sess_lifetime = :expiry, sess_time = :time WHERE sess_id = :id');
        $update->bindParam(':id', $id);
        $update->bindValue(':expiry', time() + (int) ini_get('session.gc_maxlifetime'), PDO::PARAM_INT);
        $update->bindValue(':time', time(), PDO::PARAM_INT);
        $update->execute();
        return true;
    }

    public function validateId(string $id): bool
    {
        return true;
    }

    public function close(): bool
    {
        if ($this->inTransaction) {
            $this->pdo()->commit();
            $this->inTransaction = false;
        }
        foreach ($this->unlock as $release) {
            $release->execute();
        }
        $this->unlock = [];
        return true;
    }

    public function destroy(string $id): bool
    {
        $delete = $this->pdo()->prepare('DELETE FROM sessions WHERE sess_id = :id');
        $delete->bindParam(':id', $id);
        $delete->execute();
        return true;
    }

    public function gc(int $max_lifetime): int|false
    {
        return $this->pdo()->exec('DELETE FROM sessions WHERE sess_lifetime < ' . time());
    }
}

$benchPdo = new BenchPdoSessionHandler(
    getenv('BENCH_PDO_DSN') ?: die("BENCH_PDO_DSN is not set\n"),
    getenv('BENCH_PDO_USER') ?: '',
    getenv('BENCH_PDO_PASSWORD') ?: '',
    getenv('BENCH_PDO_MODE') ?: 'advisory'
);
if (getenv('BENCH_PDO_CREATE') === '1') {
    $benchPdo->createTable();
}
session_set_save_handler($benchPdo, true);
unset($benchPdo);
