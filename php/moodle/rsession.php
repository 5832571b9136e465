<?php
// rsession for Moodle: sessions in rsession's store, locked for the whole
// request, filed under their Moodle user, killed at once.
//
// Install: copy this file to <moodle>/lib/classes/session/rsession.php (the
// session handler is loaded before plugins, so it lives where Moodle's own
// handlers do), load the extension, and in config.php:
//
//   $CFG->session_handler_class = '\core\session\rsession';
//   $CFG->session_rsession_save_path = 'redis://127.0.0.1:6379?prefix=moodle:';
//   $CFG->session_rsession_acquire_lock_timeout = 120;   // seconds, optional
//
// What Moodle asks of a handler, and what this one does:
// - init(), start(): the native rsession handler on the configured store;
//   READ_ONLY_SESSION pages (no write lock wanted) read without waiting for
//   the lock (rsession.read_only).
// - write_close(): before writing, files the session under its user (the
//   real user during "log in as") with Moodle's idle timeout plus the same
//   slack core's Redis handler gives, so Moodle's own timeout check (and the
//   auth plugins' ignore_timeout_hook) decides first and rsession's expiry
//   is the safety net. Guests and visitors are filed under nobody.
// - kill_session(), kill_all_sessions() (Moodle 4.4 and older) and
//   destroy(), destroy_all() (4.5 and later; they also drop Moodle's session
//   records): RSession\kill_session() and RSession\kill_all_sessions(), which
//   return at once even while a request holds the session, and stick.
//   Moodle's kill_user_sessions() ends each of the user's sessions this way.
// - session_exists(): whether the store knows the id.
// The registry calls go through an RSession\Handler on the configured store,
// so they work from cron and CLI too, where Moodle starts no session.

namespace core\session;

defined('MOODLE_INTERNAL') || die();

class rsession extends handler {
    /** @var string session.save_path for rsession ($CFG->session_rsession_save_path) */
    protected $savepath = '';

    /** @var int longest wait for the session lock, in seconds */
    protected $acquiretimeout = 120;

    /** @var \RSession\Handler|null the store, for kills and lookups */
    protected $store = null;

    public function __construct() {
        global $CFG;
        if (isset($CFG->session_rsession_save_path)) {
            $this->savepath = (string) $CFG->session_rsession_save_path;
        }
        if (isset($CFG->session_rsession_acquire_lock_timeout)) {
            $this->acquiretimeout = (int) $CFG->session_rsession_acquire_lock_timeout;
        }
    }

    public function init() {
        if (!extension_loaded('rsession')) {
            throw new exception('sessionhandlerproblem', 'error', '', null, 'rsession extension is not loaded');
        }
        if ($this->savepath === '') {
            throw new exception('sessionhandlerproblem', 'error', '', null,
                '$CFG->session_rsession_save_path must be specified in config.php');
        }
        ini_set('session.save_handler', 'rsession');
        ini_set('session.save_path', $this->savepath);
        ini_set('rsession.lock_wait_ms', (string) ($this->acquiretimeout * 1000));
        ini_set('rsession.lock_failure', 'fail');
        return true;
    }

    public function start() {
        // The manager says after init() whether this page wants the lock.
        ini_set('rsession.read_only', $this->requires_write_lock() ? '0' : '1');
        return parent::start();
    }

    public function write_close() {
        if ($this->requires_write_lock() && session_status() === PHP_SESSION_ACTIVE) {
            $this->file_under_user();
        }
        parent::write_close();
    }

    /**
     * Ties the open session to its Moodle user with Moodle's timeout. Both
     * calls write nothing when the session already has them.
     */
    protected function file_under_user() {
        global $CFG;
        $user = $_SESSION['USER'] ?? null;
        if (!is_object($user)) {
            return;
        }
        $userid = (int) (!empty($user->realuser) ? $user->realuser : ($user->id ?? 0));
        if ($userid <= 0 || $userid === (int) ($CFG->siteguest ?? 0)) {
            return;
        }
        $updatefreq = empty($CFG->session_update_timemodified_frequency) ? 20 : (int) $CFG->session_update_timemodified_frequency;
        try {
            \RSession\set_user($userid);
            \RSession\set_timeout((int) $CFG->sessiontimeout + $updatefreq + 60);
        } catch (\RSession\Exception $e) {
            // Killed meanwhile, or the store failed: the write that follows says so.
            error_log('rsession: filing the session under user ' . $userid . ' failed: ' . $e->getMessage());
        }
    }

    /**
     * The configured store, for calls that need no open session.
     * @return \RSession\Handler
     */
    protected function store() {
        if ($this->store === null) {
            $this->store = new \RSession\Handler($this->savepath);
        }
        return $this->store;
    }

    public function session_exists($sid) {
        try {
            return $this->store()->validateId((string) $sid);
        } catch (\RSession\Exception $e) {
            error_log('rsession: ' . $e->getMessage());
            return false;
        }
    }

    public function kill_session($sid) {
        try {
            $this->store()->killSession((string) $sid);
            return true;
        } catch (\RSession\Exception $e) {
            error_log('rsession: killing a session failed: ' . $e->getMessage());
            return false;
        }
    }

    public function kill_all_sessions() {
        try {
            $this->store()->killAllSessions();
            return true;
        } catch (\RSession\Exception $e) {
            error_log('rsession: killing all sessions failed: ' . $e->getMessage());
            return false;
        }
    }

    public function destroy(string $id): bool {
        $killed = $this->kill_session($id);
        return parent::destroy($id) && $killed;
    }

    public function destroy_all(): bool {
        $killed = $this->kill_all_sessions();
        return parent::destroy_all() && $killed;
    }
}
