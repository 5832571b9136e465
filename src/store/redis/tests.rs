//! The Redis store against real servers: the one of `make test`
//! (RSESSION_TEST_REDIS), its cluster (RSESSION_TEST_REDIS_CLUSTER: three
//! masters, three replicas) and its Sentinel set
//! (RSESSION_TEST_REDIS_SENTINEL). Most tests run on all three.

use super::*;
use crate::config::StoreConfig;
use crate::store::testing::{TTL, data, id, meta, put, read_data, registry_contract, req, write, write_for};
use crate::store::lease::Job;
use crate::store::{LockUse, UserChange};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

/// Which of the test servers.
#[derive(Debug, Clone, Copy)]
enum On {
    Single,
    Cluster,
    Sentinel,
}

fn server_url(on: On) -> String {
    let var = match on {
        On::Single => "RSESSION_TEST_REDIS",
        On::Cluster => "RSESSION_TEST_REDIS_CLUSTER",
        On::Sentinel => "RSESSION_TEST_REDIS_SENTINEL",
    };
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run the Redis tests via `make test`, which starts the servers"))
}

fn test_redis() -> String {
    server_url(On::Single)
}

fn config_of(path: &str) -> RedisConfig {
    let StoreConfig::Redis(c) = StoreConfig::parse(path, Path::new("/tmp")).unwrap() else { panic!("{path}") };
    c
}

/// A store on `on`'s server with a test prefix of its own.
fn open(on: On, prefix: &str) -> RedisStore {
    store_at(&server_url(on), prefix, "")
}

fn store(prefix: &str) -> RedisStore {
    open(On::Single, prefix)
}

/// A store on `url` with a test prefix and more query keys (`&key=value…`).
fn store_at(url: &str, prefix: &str, query: &str) -> RedisStore {
    let sep = if url.contains('?') { '&' } else { '?' };
    RedisStore::open(&config_of(&format!("{url}{sep}prefix=rtest:{prefix}:{}:{query}", std::process::id()))).unwrap()
}

/// A command on the node that holds its key (its second word).
fn command(s: &mut RedisStore, args: &[&[u8]]) -> Reply {
    let slot = args.get(1).map_or(0, |k| slots::key_slot(k));
    s.router.with_node(slot, |c| c.query_one(args)).unwrap()
}

/// Runs the tests named on every topology: `single::name`, `cluster::name`,
/// `sentinel::name`.
macro_rules! on_every_topology {
    ($($test:ident)*) => {
        mod single { $( #[test] fn $test() { super::$test(super::On::Single) } )* }
        mod cluster { $( #[test] fn $test() { super::$test(super::On::Cluster) } )* }
        mod sentinel { $( #[test] fn $test() { super::$test(super::On::Sentinel) } )* }
    };
}

on_every_topology! {
    lock_write_release_and_holder
    waiter_is_woken_at_release
    lost_lock_refuses_write_and_keeps_data
    a_write_after_the_lock_was_released_is_lost_even_with_the_same_data
    a_lost_lease_refuses_a_metadata_change_over_unchanged_data
    a_lock_taken_over_corrupt_metadata_is_freed_at_once
    the_lease_keeps_a_held_session_from_expiring
    a_session_about_to_expire_outlives_the_lock_taken_on_it
    renewal_keeps_a_long_holder
    prefixes_are_isolated_and_expiry_is_set
    lazy_write_touch_refreshes_expiry
    zero_wait_fails_at_once_and_names_the_holder
    dead_holder_frees_within_its_lease
    large_sessions_pass_whole_and_their_buffers_are_let_go
    staged_writes_leave_nothing_behind_and_waiters_read_them_whole
    scripts_are_sent_again_after_the_server_forgot_them
    a_server_error_is_reported_and_the_connection_stays_in_step
    registry
    user_index_lives_as_long_as_its_longest_session
    a_session_created_after_an_unseen_kill_all_lives
    wait_replicas_waits_for_the_replica
}

/// What [`Proxy`] does to the next request's reply.
const PASS: u8 = 0;
/// Drop it and close the connection: a reply lost on the wire.
const CUT: u8 = 1;
/// Hold it back, the connection left open: a server that stalls.
const STALL: u8 = 2;

/// A TCP proxy in front of the test Redis that can lose the reply to
/// one request after the server has run it.
struct Proxy {
    port: u16,
    next: Arc<AtomicU8>,
    /// Requests seen, one per client write.
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Proxy {
    fn start() -> Proxy {
        let upstream = test_redis().trim_start_matches("redis://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (next, seen) = (Arc::new(AtomicU8::new(PASS)), Arc::new(Mutex::new(Vec::new())));
        let (next2, seen2) = (next.clone(), seen.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let mut server = TcpStream::connect(&upstream).unwrap();
                let fault = Arc::new(AtomicU8::new(PASS));
                let (mut up, mut down, fault2) = (server.try_clone().unwrap(), client.try_clone().unwrap(), fault.clone());
                std::thread::spawn(move || {
                    let mut b = vec![0; 1 << 16];
                    while let Ok(n @ 1..) = up.read(&mut b) {
                        match fault2.load(SeqCst) {
                            PASS if down.write_all(&b[..n]).is_ok() => {}
                            STALL => {}
                            _ => break,
                        }
                    }
                    let _ = down.shutdown(Shutdown::Both);
                });
                let (next, seen) = (next2.clone(), seen2.clone());
                std::thread::spawn(move || {
                    let mut b = vec![0; 1 << 16];
                    while let Ok(n @ 1..) = client.read(&mut b) {
                        seen.lock().unwrap().push(b[..n].to_vec());
                        let f = next.swap(PASS, SeqCst);
                        fault.store(f, SeqCst);
                        if server.write_all(&b[..n]).is_err() {
                            break;
                        }
                        if f == CUT {
                            std::thread::sleep(Duration::from_millis(100)); // the server runs it
                            break;
                        }
                    }
                    let _ = client.shutdown(Shutdown::Both);
                    let _ = server.shutdown(Shutdown::Both);
                });
            }
        });
        Proxy { port, next, seen }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Arms a fault for the next request; returns a mark for [`Self::sent_since`].
    fn arm(&self, fault: u8) -> usize {
        self.next.store(fault, SeqCst);
        self.seen.lock().unwrap().len()
    }

    /// Requests since `mark` that contain `word`.
    fn sent_since(&self, mark: usize, word: &[u8]) -> usize {
        self.seen.lock().unwrap()[mark..].iter().filter(|r| r.windows(word.len()).any(|w| w == word)).count()
    }
}

fn lock_write_release_and_holder(on: On) {
    let (mut a, mut b) = (open(on, "lwr"), open(on, "lwr"));
    let s = id("abc");
    let Locked::Acquired { token, record: None } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    assert_eq!(b.lock_holder(&s).unwrap().unwrap().pid, 7);
    let Locked::TimedOut { holder: Some(h) } = b.lock_and_read(&s, &req(50, 5000)).unwrap() else { panic!() };
    assert_eq!(h.uri, "/t");
    a.save(&s, &put(Save::Write(b"x\0y"), &meta(), TTL, LockUse::Release(token))).unwrap();
    assert!(b.lock_holder(&s).unwrap().is_none());
    let Locked::Acquired { token, record } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    assert_eq!(data(record).as_deref(), Some(&b"x\0y"[..]));
    b.unlock(&s, token).unwrap();
    assert!(b.destroy(&s).unwrap());
    assert!(!b.exists(&s).unwrap());
}

fn waiter_is_woken_at_release(on: On) {
    let mut a = open(on, "wake");
    let s = id("abc");
    let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    let waiter = std::thread::spawn(move || {
        let mut b = open(on, "wake");
        let got = matches!(b.lock_and_read(&id("abc"), &req(5000, 5000)).unwrap(), Locked::Acquired { .. });
        (got, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(200));
    let released = Instant::now();
    a.save(&s, &put(Save::Write(b"1"), &meta(), TTL, LockUse::Release(token))).unwrap();
    let (got, acquired) = waiter.join().unwrap();
    assert!(got);
    // Woken by the release, not by a timeout (the lease is 5 s).
    assert!(acquired.duration_since(released) < Duration::from_millis(500));
}

fn lost_lock_refuses_write_and_keeps_data(on: On) {
    let (mut a, mut b) = (open(on, "lost"), open(on, "lost"));
    let s = id("abc");
    b.save(&s, &put(Save::Write(b"before"), &meta(), TTL, LockUse::Unlocked)).unwrap();
    // A holder that stops renewing: its 200 ms lease runs out.
    a.renew_enabled = false;
    let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 200)).unwrap() else { panic!() };
    std::thread::sleep(Duration::from_millis(400));
    let Locked::Acquired { token: t2, .. } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    b.save(&s, &put(Save::Write(b"theirs"), &meta(), TTL, LockUse::Keep(t2))).unwrap();
    assert!(matches!(a.save(&s, &put(Save::Write(b"mine"), &meta(), TTL, LockUse::Release(token))), Err(StoreError::LockLost)));
    assert_eq!(read_data(&mut b, &s).as_deref(), Some(&b"theirs"[..]));
    assert!(b.lock_holder(&s).unwrap().is_some(), "the loser must not release the winner's lock");
    b.unlock(&s, t2).unwrap();
}

fn a_write_after_the_lock_was_released_is_lost_even_with_the_same_data(on: On) {
    let mut a = open(on, "retry");
    let s = id("abc");
    let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    a.save(&s, &put(Save::Write(b"v1"), &meta(), TTL, LockUse::Release(token))).unwrap();
    // The same call again: a write is never sent twice, so this is a new
    // request under a lock that is gone.
    assert!(matches!(a.save(&s, &put(Save::Write(b"v1"), &meta(), TTL, LockUse::Release(token))), Err(StoreError::LockLost)));
    assert!(matches!(a.save(&s, &put(Save::Write(b"v2"), &meta(), TTL, LockUse::Release(token))), Err(StoreError::LockLost)));
    assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"v1"[..]));
}

fn a_lost_lease_refuses_a_metadata_change_over_unchanged_data(on: On) {
    let (mut a, mut b) = (open(on, "lostmeta"), open(on, "lostmeta"));
    let s = id("abc");
    let ann = Meta { user: Some("ann".into()), ..meta() };
    b.save(&s, &Put { user: UserChange::From(None), ..put(Save::Write(b"same"), &ann, TTL, LockUse::Unlocked) }).unwrap();
    // A holder that stops renewing loses its 200 ms lease; another
    // request takes the lock and releases it.
    a.renew_enabled = false;
    let Locked::Acquired { token, record: Some(rec) } = a.lock_and_read(&s, &req(0, 200)).unwrap() else { panic!() };
    std::thread::sleep(Duration::from_millis(400));
    let Locked::Acquired { token: t2, .. } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    b.unlock(&s, t2).unwrap();
    // The late holder logs in as bob: the data is as stored, the user not.
    let bob = Meta { user: Some("bob".into()), ..rec.meta };
    let p = Put { existed: true, user: UserChange::From(Some("ann")), ..put(Save::Write(b"same"), &bob, TTL, LockUse::Release(token)) };
    assert!(matches!(a.save(&s, &p), Err(StoreError::LockLost)), "set_user() must not be dropped silently");
    assert_eq!(b.read(&s).unwrap().unwrap().meta.user.as_deref(), Some("ann"));
    assert_eq!(b.user_sessions("ann").unwrap().len(), 1);
    assert!(b.user_sessions("bob").unwrap().is_empty());
}

fn a_lock_taken_over_corrupt_metadata_is_freed_at_once(on: On) {
    let (mut a, mut b) = (open(on, "corrupt"), open(on, "corrupt"));
    let s = id("abc");
    a.save(&s, &put(Save::Write(b"x"), &meta(), TTL, LockUse::Unlocked)).unwrap();
    let (session_key, lock_key) = (a.key(&s, "s"), a.key(&s, "l"));
    command(&mut a, &[b"HSET", session_key.as_bytes(), b"m", b"\xffgarbage"]);
    // The free lock (the pipeline)...
    assert!(a.lock_and_read(&s, &req(0, 5000)).is_err());
    assert_eq!(b.lock_holder(&s).unwrap(), None, "the lock outlived the failed read");
    // ...and one taken after a wait (the script).
    command(&mut b, &[b"SET", lock_key.as_bytes(), b"someone", b"PX", b"200"]);
    assert!(a.lock_and_read(&s, &req(3000, 5000)).is_err());
    assert_eq!(b.lock_holder(&s).unwrap(), None, "the lock outlived the failed read");
    command(&mut a, &[b"DEL", session_key.as_bytes()]);
    let Locked::Acquired { token, record: None } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    b.unlock(&s, token).unwrap();
}

#[test]
fn a_lock_whose_reply_timed_out_is_freed_at_once() {
    let proxy = Proxy::start();
    let (mut a, mut b) = (store_at(&proxy.url(), "stall", "&timeout_ms=200"), store("stall"));
    let s = id("abc");
    a.save(&s, &put(Save::Write(b"x"), &meta(), TTL, LockUse::Unlocked)).unwrap();
    proxy.arm(STALL);
    let e = a.lock_and_read(&s, &req(0, 5000)).unwrap_err().to_string();
    assert!(e.contains("acquire the lock"), "{e}");
    assert_eq!(b.lock_holder(&s).unwrap(), None, "the lock outlived the timeout");
    let Locked::Acquired { token, .. } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    b.unlock(&s, token).unwrap();
}

#[test]
fn a_reply_lost_on_the_wire_resends_only_what_may_run_twice() {
    let proxy = Proxy::start();
    let mut a = store_at(&proxy.url(), "resend", "");
    let s = id("abc");
    a.save(&s, &put(Save::Write(b"v1"), &meta(), TTL, LockUse::Unlocked)).unwrap();
    // A write whose reply is lost fails; it is not run a second time.
    let mark = proxy.arm(CUT);
    let e = a.save(&s, &put(Save::Write(b"v2"), &meta(), TTL, LockUse::Unlocked)).unwrap_err().to_string();
    assert!(e.contains("write"), "{e}");
    assert_eq!(proxy.sent_since(mark, b"EVAL"), 1, "a write was sent twice");
    // A read is sent again and succeeds.
    let mark = proxy.arm(CUT);
    assert!(read_data(&mut a, &s).is_some());
    assert!(proxy.sent_since(mark, b"HMGET") >= 2);
    // So is a lock grab: the second copy finds the lock ours.
    proxy.arm(CUT);
    let Locked::Acquired { token, record: Some(_) } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    a.unlock(&s, token).unwrap();
    assert_eq!(a.lock_holder(&s).unwrap(), None);
}

#[test]
fn the_renewer_says_whether_it_reached_redis() {
    let mut a = store("renewer");
    let s = id("abc");
    let mut renew = renewer(a.router.sibling());
    let lock_key = a.key(&s, "l");
    let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    let hex = token.hex();
    let job = || Job::Renew { key: &lock_key, context: &hex, ttl: Duration::from_secs(5) };
    assert!(renew(job()));
    a.unlock(&s, token).unwrap();
    assert!(renew(job()), "a lock no longer ours is no failure");
    let down = config_of("redis://127.0.0.1:1?connect_timeout_ms=100");
    assert!(!renewer(Router::new(&down))(job()));
}

/// A release that failed (its node went away) is retried by the lease
/// thread, without another request of this process: token-checked, and
/// the waiters are woken.
#[test]
fn the_lease_thread_frees_a_lock_whose_release_failed() {
    let (mut a, mut b) = (store("laterfree"), store("laterfree"));
    let s = id("abc");
    let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 10_000)).unwrap() else { panic!() };
    // As when the release's node could not be reached.
    let keys = a.keys(&s);
    a.retry_release(&keys, &token.hex(), false);
    let waited = Instant::now();
    let Locked::Acquired { token: t2, .. } = b.lock_and_read(&s, &req(3000, 10_000)).unwrap() else { panic!("still held") };
    assert!(waited.elapsed() < Duration::from_secs(2), "freed by the thread, not the 10 s lease: {:?}", waited.elapsed());
    // Token-checked: the thread's later retries leave b's lock alone.
    let other = LockToken::random();
    a.retry_release(&keys, &other.hex(), true);
    std::thread::sleep(Duration::from_millis(300));
    assert!(b.lock_holder(&s).unwrap().is_some(), "another's lock was freed");
    b.unlock(&s, t2).unwrap();
}

fn the_lease_keeps_a_held_session_from_expiring(on: On) {
    let mut a = open(on, "keepsession");
    let (s, long) = (id("abc"), id("long"));
    a.save(&s, &put(Save::Write(b"x"), &meta(), Duration::from_secs(1), LockUse::Unlocked)).unwrap();
    a.save(&long, &put(Save::Write(b"x"), &meta(), TTL, LockUse::Unlocked)).unwrap();
    let Locked::Acquired { token, record: Some(rec) } = a.lock_and_read(&s, &req(0, 300)).unwrap() else { panic!() };
    let Locked::Acquired { token: t2, .. } = a.lock_and_read(&long, &req(0, 300)).unwrap() else { panic!() };
    // Held past the session's 1 s idle timeout by a long request.
    std::thread::sleep(Duration::from_millis(1600));
    let p = Put { existed: true, ..put(Save::Write(b"y"), &rec.meta, TTL, LockUse::Release(token)) };
    a.save(&s, &p).expect("the session expired under its holder");
    assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"y"[..]));
    // A longer expiry is never shortened.
    let key = a.key(&long, "s");
    let Reply::Int(left) = command(&mut a, &[b"PTTL", key.as_bytes()]) else { panic!() };
    assert!(left > 90_000, "{left}");
    a.unlock(&long, t2).unwrap();
}

fn a_session_about_to_expire_outlives_the_lock_taken_on_it(on: On) {
    // Both ways of taking the lock: the free-lock pipeline and the
    // script that takes it after a wait.
    for contended in [false, true] {
        let (mut a, mut b) = (open(on, "nearexpiry"), open(on, "nearexpiry"));
        a.renew_enabled = false; // only what the lock taking itself does
        let s = id(if contended { "contended" } else { "free" });
        let held = if contended {
            let Locked::Acquired { token, .. } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
            Some(token)
        } else {
            None
        };
        a.save(&s, &put(Save::Write(b"x"), &meta(), Duration::from_millis(250), LockUse::Unlocked)).unwrap();
        let releaser = held.map(|t| {
            let sid = s.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                b.unlock(&sid, t).unwrap();
            })
        });
        let Locked::Acquired { token, record: Some(rec) } = a.lock_and_read(&s, &req(2000, 2000)).unwrap() else {
            panic!("contended={contended}: the session should be read")
        };
        releaser.map(|r| r.join().unwrap());
        std::thread::sleep(Duration::from_millis(400));
        let p = Put { existed: true, ..put(Save::Write(b"y"), &rec.meta, TTL, LockUse::Release(token)) };
        a.save(&s, &p).unwrap_or_else(|e| panic!("contended={contended}: expired under its holder: {e}"));
    }
}

fn renewal_keeps_a_long_holder(on: On) {
    let (mut a, mut b) = (open(on, "renew"), open(on, "renew"));
    let s = id("abc");
    let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 300)).unwrap() else { panic!() };
    std::thread::sleep(Duration::from_millis(900));
    assert!(matches!(b.lock_and_read(&s, &req(0, 300)).unwrap(), Locked::TimedOut { .. }));
    a.save(&s, &put(Save::Write(b"ok"), &meta(), TTL, LockUse::Release(token))).unwrap();
}

fn prefixes_are_isolated_and_expiry_is_set(on: On) {
    let (mut a, mut b) = (open(on, "iso-a"), open(on, "iso-b"));
    let s = id("abc");
    a.save(&s, &put(Save::Write(b"a"), &meta(), Duration::from_millis(300), LockUse::Unlocked)).unwrap();
    assert!(!b.exists(&s).unwrap());
    std::thread::sleep(Duration::from_millis(500));
    assert!(!a.exists(&s).unwrap(), "the idle timeout is the key's expiry");
}

#[test]
fn down_server_is_an_error_not_a_hang() {
    let mut s = RedisStore::open(&config_of("redis://127.0.0.1:1?connect_timeout_ms=200")).unwrap();
    let t = Instant::now();
    let e = s.read(&id("abc")).unwrap_err().to_string();
    assert!(e.contains("127.0.0.1:1") && e.contains("cannot connect"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2));
}

fn lazy_write_touch_refreshes_expiry(on: On) {
    let mut a = open(on, "touch");
    let s = id("abc");
    a.save(&s, &put(Save::Write(b"x"), &meta(), Duration::from_millis(400), LockUse::Unlocked)).unwrap();
    std::thread::sleep(Duration::from_millis(250));
    a.save(&s, &put(Save::Touch, &meta(), Duration::from_millis(400), LockUse::Unlocked)).unwrap();
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"x"[..]), "the touch moved the expiry");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read_data(&mut a, &s), None);
    // A touch under the lock releases it too.
    a.save(&s, &put(Save::Write(b"y"), &meta(), TTL, LockUse::Unlocked)).unwrap();
    let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    a.save(&s, &put(Save::Touch, &meta(), TTL, LockUse::Release(token))).unwrap();
    assert!(a.lock_holder(&s).unwrap().is_none());
}

fn zero_wait_fails_at_once_and_names_the_holder(on: On) {
    let (mut a, mut b) = (open(on, "zero"), open(on, "zero"));
    let s = id("abc");
    let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    let t = Instant::now();
    let Locked::TimedOut { holder: Some(h) } = b.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    assert!(t.elapsed() < Duration::from_millis(200), "{:?}", t.elapsed());
    assert_eq!((h.host.as_str(), h.pid, h.uri.as_str()), ("h", 7, "/t"));
    // Bounded by the wait, not by the 5 s lease.
    let t = Instant::now();
    assert!(matches!(b.lock_and_read(&s, &req(150, 5000)).unwrap(), Locked::TimedOut { .. }));
    assert!(t.elapsed() >= Duration::from_millis(150) && t.elapsed() < Duration::from_millis(1500));
    a.unlock(&s, token).unwrap();
}

fn dead_holder_frees_within_its_lease(on: On) {
    let (mut a, mut b) = (open(on, "dead"), open(on, "dead"));
    let s = id("abc");
    // A holder that dies: never renews, never releases.
    a.renew_enabled = false;
    let Locked::Acquired { .. } = a.lock_and_read(&s, &req(0, 300)).unwrap() else { panic!() };
    let t = Instant::now();
    let Locked::Acquired { token, .. } = b.lock_and_read(&s, &req(5000, 5000)).unwrap() else { panic!() };
    assert!(t.elapsed() < Duration::from_millis(1000), "{:?}", t.elapsed());
    b.unlock(&s, token).unwrap();
}

#[test]
fn reconnects_once_after_the_server_closed_the_connection() {
    let (mut a, mut b) = (store("reconnect"), store("reconnect"));
    let s = id("abc");
    a.save(&s, &put(Save::Write(b"x"), &meta(), TTL, LockUse::Unlocked)).unwrap();
    let client_id = |a: &mut RedisStore| match a.router.open_connection(0).unwrap().query_one(&[b"CLIENT", b"ID"]).unwrap() {
        Reply::Int(me) => me.to_string(),
        r => panic!("{r:?}"),
    };
    let me = client_id(&mut a);
    assert_eq!(command(&mut b, &[b"CLIENT", b"KILL", b"ID", me.as_bytes()]), Reply::Int(1));
    assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"x"[..]));
    // A write, never sent twice, is not lost either: the closed
    // connection is noticed before it goes out.
    let me = client_id(&mut a);
    assert_eq!(command(&mut b, &[b"CLIENT", b"KILL", b"ID", me.as_bytes()]), Reply::Int(1));
    std::thread::sleep(Duration::from_millis(50));
    a.save(&s, &put(Save::Write(b"y"), &meta(), TTL, LockUse::Unlocked)).unwrap();
    assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"y"[..]));
}

#[test]
fn unix_socket_and_db_selection() {
    let sock = std::env::var("RSESSION_TEST_REDIS_SOCK").expect("RSESSION_TEST_REDIS_SOCK is not set: run the Redis tests via `make test`");
    let open = |path: String| RedisStore::open(&config_of(&path)).unwrap();
    let prefix = format!("rtest:db:{}:", std::process::id());
    let mut db0 = open(format!("redis+unix://{sock}?prefix={prefix}"));
    let mut db3 = open(format!("redis+unix://{sock}?db=3&prefix={prefix}"));
    let tcp = test_redis();
    let mut db3_tcp = open(format!("{tcp}/3?prefix={prefix}"));
    let s = id("abc");
    db3.save(&s, &put(Save::Write(b"in3"), &meta(), TTL, LockUse::Unlocked)).unwrap();
    assert_eq!(read_data(&mut db0, &s), None);
    assert_eq!(read_data(&mut db3_tcp, &s).as_deref(), Some(&b"in3"[..]));
    assert!(db3.destroy(&s).unwrap());
}

fn large_sessions_pass_whole_and_their_buffers_are_let_go(on: On) {
    let mut a = open(on, "large");
    let s = id("abc");
    // Bytes that look like protocol, across many reads.
    let big: Vec<u8> = b"$5\r\n*1\r\n-ERR\r\n\0".iter().copied().cycle().take(3 << 20).collect();
    let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    a.save(&s, &put(Save::Write(&big), &meta(), TTL, LockUse::Release(token))).unwrap();
    let Locked::Acquired { token, record } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    assert!(data(record).as_deref() == Some(&big[..]), "3 MB came back changed");
    a.unlock(&s, token).unwrap();
    assert_eq!(read_data(&mut a, &s).map(|d| d.len()), Some(big.len()));
    assert_eq!(a.lock_holder(&s).unwrap(), None, "still in step after the large replies");
    let slot = a.keys(&s).slot;
    let (read_buf, write_buf) = a.router.open_connection(slot).unwrap().buffer_sizes();
    assert!(read_buf <= 256 * 1024 && write_buf <= 256 * 1024, "{read_buf} {write_buf}");
}

/// The data is staged in a key of each write and renamed over the session
/// (save.lua): a write that lands, one that lost its lock and one over a
/// killed session each leave no staged key; a waiter woken by the release
/// (the acquire script, the data read beside it) gets the data whole.
fn staged_writes_leave_nothing_behind_and_waiters_read_them_whole(on: On) {
    let (mut a, mut b) = (open(on, "staged"), open(on, "staged"));
    let s = id("abc");
    let keys = a.keys(&s);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let gone = |a: &mut RedisStore, token: LockToken| {
        let stage = a.stage_key(&keys, Some(token));
        assert_eq!(command(a, &[b"EXISTS", stage.as_bytes()]), Reply::Int(0), "{stage} is left");
    };
    let Locked::Acquired { token, record: None } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    let waiter = std::thread::spawn(move || {
        let Locked::Acquired { token, record } = b.lock_and_read(&id("abc"), &req(5000, 5000)).unwrap() else { panic!() };
        (b, token, record)
    });
    std::thread::sleep(Duration::from_millis(200));
    a.save(&s, &put(Save::Write(&big), &meta(), TTL, LockUse::Release(token))).unwrap();
    gone(&mut a, token);
    let (mut b, t2, record) = waiter.join().unwrap();
    let rec = record.expect("the waiter reads the session");
    assert!(rec.data == big, "the waiter read {} bytes", rec.data.len());
    // The first holder writes again under its old token: refused, unstaged.
    assert!(matches!(a.save(&s, &put(Save::Write(b"late"), &meta(), TTL, LockUse::Release(token))), Err(StoreError::LockLost)));
    gone(&mut a, token);
    // Killed (destroyed by another request) while held: the holder's write
    // is refused, unstaged.
    assert!(a.destroy(&s).unwrap());
    let p = Put { existed: true, ..put(Save::Write(b"after kill"), &rec.meta, TTL, LockUse::Release(t2)) };
    assert!(matches!(b.save(&s, &p), Err(StoreError::Killed)));
    gone(&mut b, t2);
    assert!(!a.exists(&s).unwrap());
}

fn scripts_are_sent_again_after_the_server_forgot_them(on: On) {
    let (mut a, mut b) = (open(on, "noscript"), open(on, "noscript"));
    let s = id("abc");
    a.save(&s, &put(Save::Write(b"1"), &meta(), TTL, LockUse::Unlocked)).unwrap();
    let key = a.key(&s, "s");
    b.router.with_node(slots::key_slot(key.as_bytes()), |c| c.query_one(&[b"SCRIPT", b"FLUSH"])).unwrap();
    a.save(&s, &put(Save::Write(b"2"), &meta(), TTL, LockUse::Unlocked)).unwrap();
    assert_eq!(read_data(&mut a, &s).as_deref(), Some(&b"2"[..]));
}

fn a_server_error_is_reported_and_the_connection_stays_in_step(on: On) {
    let mut a = open(on, "errors");
    let key = format!("{}k", a.prefix);
    let slot = slots::key_slot(key.as_bytes());
    let op = Op::new(
        slot,
        Resend::Never,
        vec![plain(&[b"SET", key.as_bytes(), b"x"]), plain(&[b"INCR", key.as_bytes()]), plain(&[b"GET", key.as_bytes()])],
    );
    let e = a.router.run(&[op]).pop().unwrap().unwrap_err();
    let e = failed("incr", e).to_string();
    assert!(e.contains("incr: ERR value is not an integer"), "{e}");
    let get = Op::new(slot, Resend::Never, vec![plain(&[b"GET", key.as_bytes()])]);
    assert_eq!(a.router.run(&[get]).pop().unwrap().unwrap(), vec![Reply::Bytes(b"x".to_vec())]);
}

fn registry(on: On) {
    registry_contract(&|| Box::new(open(on, "registry")));
}

fn user_index_lives_as_long_as_its_longest_session(on: On) {
    let mut a = open(on, "uttl");
    let ttl = |a: &mut RedisStore, k: &str| -> i64 { int_of(&command(a, &[b"PTTL", k.as_bytes()])) };
    let ukey = format!("{}u:ivy", a.prefix);
    let m = Meta { user: Some("ivy".into()), ..meta() };
    let p = Put { user: UserChange::From(None), ..put(Save::Write(b"1"), &m, Duration::from_secs(50), LockUse::Unlocked) };
    a.save(&id("i1"), &p).unwrap();
    let t = ttl(&mut a, &ukey);
    assert!(t > 40_000 && t <= 50_000, "{t}");
    let forever = Meta { timeout: 0, timeout_set: true, ..m.clone() };
    a.save(&id("i2"), &Put { user: UserChange::From(None), ..put(Save::Write(b"2"), &forever, Duration::ZERO, LockUse::Unlocked) }).unwrap();
    assert_eq!(ttl(&mut a, &ukey), -1, "a session that never times out keeps its index");
    let k2 = a.key(&id("i2"), "s");
    assert_eq!(ttl(&mut a, &k2), -1);
    let _ = write;
}

/// A process that last read the generation before a kill_all, then writes
/// a new session without reading first (a handler driven by hand): the
/// session is newer than the kill and lives. On a cluster the write script
/// is given the generation this process knew, so the store must notice.
fn a_session_created_after_an_unseen_kill_all_lives(on: On) {
    let (mut a, mut b) = (open(on, "unseen"), open(on, "unseen"));
    write(&mut a, &id("old"), b"o");
    assert_eq!(read_data(&mut a, &id("old")).as_deref(), Some(&b"o"[..]));
    b.kill_all().unwrap();
    write_for(&mut a, &id("new"), "nina", b"n");
    assert_eq!(read_data(&mut b, &id("new")).as_deref(), Some(&b"n"[..]), "a session written after the kill_all was lost");
    assert_eq!(b.user_sessions("nina").unwrap().len(), 1);
    assert_eq!(read_data(&mut b, &id("old")), None);
}

/// `wait_replicas=1`: every server of the tests has one replica, so the
/// lock and the write reach it and nothing is warned; two are never there.
fn wait_replicas_waits_for_the_replica(on: On) {
    if matches!(on, On::Single) {
        // The single test server has no replica: WAIT 1 gives up after
        // timeout_ms, and the request is warned (and still succeeds).
        let mut a = store_at(&server_url(on), "wait1", "&wait_replicas=1&timeout_ms=100");
        let Locked::Acquired { token, .. } = a.lock_and_read(&id("w"), &req(0, 5000)).unwrap() else { panic!() };
        let w = a.take_warnings();
        assert!(w.len() == 1 && w[0].contains("wait_replicas=1: the lock") && w[0].contains("reached 0 replica"), "{w:?}");
        a.save(&id("w"), &put(Save::Write(b"x"), &meta(), TTL, LockUse::Release(token))).unwrap();
        assert!(a.take_warnings()[0].contains("the write"));
        return;
    }
    let mut a = store_at(&server_url(on), "wait1", "&wait_replicas=1");
    let s = id("w");
    let Locked::Acquired { token, .. } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
    a.save(&s, &put(Save::Write(b"x"), &meta(), TTL, LockUse::Release(token))).unwrap();
    assert_eq!(a.take_warnings(), Vec::<String>::new());
    let mut two = store_at(&server_url(on), "wait2", "&wait_replicas=2&timeout_ms=100");
    write(&mut two, &s, b"y");
    assert!(two.take_warnings().iter().any(|w| w.contains("reached 1 replica")));
}

// ---------------------------------------------------------------- cluster

/// Session ids whose slots are served by each of the cluster's masters:
/// one list per master, in the order of [`Router::masters`].
fn ids_on_every_master(a: &mut RedisStore, per_master: usize) -> Vec<Vec<SessionId>> {
    let masters = a.router.masters();
    assert_eq!(masters.len(), 3, "the test cluster has three masters: {masters:?}");
    let mut by_master = vec![Vec::new(); masters.len()];
    for n in 0.. {
        let s = id(&format!("spread{n}"));
        let m = a.router.node_of(a.keys(&s).slot).unwrap();
        let i = masters.iter().position(|x| *x == m).unwrap();
        if by_master[i].len() < per_master {
            by_master[i].push(s);
        }
        if by_master.iter().all(|l| l.len() == per_master) {
            break;
        }
    }
    by_master
}

#[test]
fn cluster_sessions_live_on_the_master_of_their_slot() {
    let mut a = open(On::Cluster, "spread");
    let by_master = ids_on_every_master(&mut a, 2);
    let masters = a.router.masters();
    for (m, ids) in masters.iter().zip(&by_master) {
        for s in ids {
            write(&mut a, s, s.as_str().as_bytes());
            // Asked directly, the master holds all of the session there.
            let mut direct = resp::Connection::open(&config_of(&format!("redis://{m}"))).unwrap();
            let key = a.key(s, "s");
            assert_eq!(direct.query_one(&[b"EXISTS", key.as_bytes()]).unwrap(), Reply::Int(1), "{s} not on {m}");
            let Locked::Acquired { token, record: Some(r) } = a.lock_and_read(s, &req(0, 5000)).unwrap() else { panic!() };
            assert_eq!(r.data, s.as_str().as_bytes());
            let lock = a.key(s, "l");
            assert_eq!(direct.query_one(&[b"EXISTS", lock.as_bytes()]).unwrap(), Reply::Int(1), "the lock is beside its session");
            a.unlock(s, token).unwrap();
        }
    }
}

#[test]
fn cluster_a_user_with_sessions_on_every_master_is_listed_and_killed_whole() {
    let (mut a, mut b) = (open(On::Cluster, "killall3"), open(On::Cluster, "killall3"));
    let ids: Vec<SessionId> = ids_on_every_master(&mut a, 2).concat();
    for s in &ids {
        write_for(&mut a, s, "uma", b"u");
    }
    let mut listed: Vec<String> = b.user_sessions("uma").unwrap().into_iter().map(|l| l.id.to_string()).collect();
    listed.sort();
    let mut expected: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    // One of them is held by a request while the kill runs: it stays dead.
    let Locked::Acquired { token, record: Some(rec) } = a.lock_and_read(&ids[5], &req(0, 5000)).unwrap() else { panic!() };
    assert_eq!(b.kill_user("uma", Some(&ids[0])).unwrap(), 5);
    let p = Put { existed: true, ..put(Save::Write(b"zombie"), &rec.meta, TTL, LockUse::Release(token)) };
    assert!(matches!(a.save(&ids[5], &p), Err(StoreError::Killed)));
    for s in &ids[1..] {
        assert_eq!(read_data(&mut b, s), None, "{s} survived");
    }
    assert_eq!(b.user_sessions("uma").unwrap().len(), 1);
    // The index lost the killed ones.
    let (index, _) = a.index_key(b"uma");
    let Reply::Array(left) = command(&mut a, &[b"SMEMBERS", &index]) else { panic!() };
    assert_eq!(left, vec![Reply::Bytes(ids[0].as_str().as_bytes().to_vec())]);
}

/// A connection to one node of `on`'s servers (with their password).
fn direct_on(on: On, node: &slots::NodeAddr) -> resp::Connection {
    let password = config_of(&server_url(on)).password.map(|p| format!(":{p}@")).unwrap_or_default();
    resp::Connection::open(&config_of(&format!("redis://{password}{node}"))).unwrap()
}

fn direct(node: &slots::NodeAddr) -> resp::Connection {
    direct_on(On::Cluster, node)
}

fn node_id(conn: &mut resp::Connection) -> Vec<u8> {
    match conn.query_one(&[b"CLUSTER", b"MYID"]).unwrap() {
        Reply::Bytes(b) => b,
        r => panic!("{r:?}"),
    }
}

fn setslot(conn: &mut resp::Connection, slot: &str, state: &[u8], node: &[u8]) {
    let r = conn.query_one(&[b"CLUSTER", b"SETSLOT", slot.as_bytes(), state, node]).unwrap();
    assert_eq!(r, Reply::Bytes(b"OK".to_vec()));
}

/// A session's slot moved to another master while a loop of locked
/// increments runs on it: first half way (MIGRATING/IMPORTING, its keys
/// moved one by one with MIGRATE: ASK is followed, TRYAGAIN waited out),
/// then for good (MOVED, the map read again). No increment is lost, none
/// fails. Then it moves back.
#[test]
fn cluster_a_slot_migrated_during_a_loop_loses_nothing() {
    let mut a = open(On::Cluster, "migrate");
    let s = id("migrating");
    let slot = a.keys(&s).slot;
    let masters = a.router.masters();
    let from = a.router.node_of(slot).unwrap();
    let to = masters.iter().find(|m| **m != from).unwrap().clone();
    let (mut src, mut dst) = (direct(&from), direct(&to));
    let (src_id, dst_id) = (node_id(&mut src), node_id(&mut dst));
    let loop_store = open(On::Cluster, "migrate");
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = running.clone();
    let looper = std::thread::spawn(move || {
        let mut store = loop_store;
        let s = id("migrating");
        let mut n = 0u64;
        while flag.load(SeqCst) || n < 20 {
            let Locked::Acquired { token, record } = store.lock_and_read(&s, &req(5000, 5000)).unwrap() else { panic!() };
            let seen: u64 = data(record).map_or(0, |d| String::from_utf8(d).unwrap().parse().unwrap());
            assert_eq!(seen, n, "an increment was lost");
            n += 1;
            store.save(&s, &put(Save::Write(n.to_string().as_bytes()), &meta(), TTL, LockUse::Release(token))).unwrap();
        }
        n
    });
    let slot_text = slot.to_string();
    std::thread::sleep(Duration::from_millis(100));
    let migrate = |src: &mut resp::Connection, dst: &mut resp::Connection, src_id: &[u8], dst_id: &[u8], to: &slots::NodeAddr| {
        setslot(dst, &slot_text, b"IMPORTING", src_id);
        setslot(src, &slot_text, b"MIGRATING", dst_id);
        // The keys go one by one, with the loop running in between.
        for _ in 0..20 {
            let Reply::Array(keys) = src.query_one(&[b"CLUSTER", b"GETKEYSINSLOT", slot_text.as_bytes(), b"1"]).unwrap() else {
                panic!()
            };
            let Some(Reply::Bytes(key)) = keys.first() else { break };
            let port = to.port.to_string();
            let r = src.query_one(&[b"MIGRATE", to.host.as_bytes(), port.as_bytes(), key, b"0", b"5000"]);
            assert!(r.is_ok() || matches!(&r, Err(resp::Error::Server(m)) if m.contains("NOKEY")), "{r:?}");
            std::thread::sleep(Duration::from_millis(30));
        }
        std::thread::sleep(Duration::from_millis(100));
        // Done: every master learns the new owner.
        setslot(dst, &slot_text, b"NODE", dst_id);
        setslot(src, &slot_text, b"NODE", dst_id);
    };
    migrate(&mut src, &mut dst, &src_id, &dst_id, &to);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(a.router.node_of(slot).unwrap(), from, "this store has not been redirected yet");
    let before = read_data(&mut a, &s);
    assert!(before.is_some());
    assert_eq!(a.router.node_of(slot).unwrap(), to, "MOVED updated the map");
    // And back, so the cluster is as it was.
    migrate(&mut dst, &mut src, &dst_id, &src_id, &from);
    std::thread::sleep(Duration::from_millis(200));
    running.store(false, SeqCst);
    let n = looper.join().expect("the loop failed");
    assert!(n >= 20);
    assert_eq!(read_data(&mut a, &s), Some(n.to_string().into_bytes()));
}

#[test]
fn cluster_a_seed_that_is_down_is_skipped() {
    let url = server_url(On::Cluster).replacen("redis-cluster://", "redis-cluster://127.0.0.1:1,", 1);
    let mut a = store_at(&url, "seeds", "&connect_timeout_ms=200");
    write(&mut a, &id("x"), b"1");
    assert_eq!(read_data(&mut a, &id("x")).as_deref(), Some(&b"1"[..]));
    let mut none = store_at("redis-cluster://127.0.0.1:1,127.0.0.1:2", "seeds", "&connect_timeout_ms=200");
    let e = none.read(&id("x")).unwrap_err().to_string();
    assert!(e.contains("cannot connect") && e.contains("no seed node answered"), "{e}");
}

// --------------------------------------------------------------- sentinel

#[test]
fn sentinel_a_sentinel_that_is_down_is_skipped_and_a_replica_is_refused() {
    let url = server_url(On::Sentinel).replacen("@", "@127.0.0.1:1,", 1);
    let mut a = store_at(&url, "sentinels", "&connect_timeout_ms=200");
    write(&mut a, &id("x"), b"1");
    assert_eq!(read_data(&mut a, &id("x")).as_deref(), Some(&b"1"[..]));
    // Told of a replica as the master (a sentinel behind a failover), the
    // store checks its ROLE, asks the sentinels again and goes on.
    let master = a.router.master().unwrap();
    let Reply::Array(info) = direct_on(On::Sentinel, &master).query_one(&[b"ROLE"]).unwrap() else { panic!() };
    let Some(Reply::Array(replicas)) = info.get(2) else { panic!("{info:?}") };
    let Some(Reply::Array(replica)) = replicas.first() else { panic!("the master has no replica: {info:?}") };
    let (Some(Reply::Bytes(host)), Some(Reply::Bytes(port))) = (replica.first(), replica.get(1)) else { panic!() };
    let replica = slots::NodeAddr { host: String::from_utf8_lossy(host).into(), port: String::from_utf8_lossy(port).parse().unwrap() };
    let mut b = store_at(&url, "sentinels", "&connect_timeout_ms=200");
    b.router.set_master(replica);
    assert_eq!(read_data(&mut b, &id("x")).as_deref(), Some(&b"1"[..]));
    assert_eq!(b.router.master(), Some(master));
    let mut wrong = store_at(&server_url(On::Sentinel).replace("/rsession", "/nosuchmaster"), "sentinels", "");
    let e = wrong.read(&id("x")).unwrap_err().to_string();
    assert!(e.contains("no sentinel named the master") && e.contains("knows no master named \"nosuchmaster\""), "{e}");
}

#[test]
fn sentinel_passwords_are_given_to_the_sentinels_and_to_the_master() {
    let url = server_url(On::Sentinel);
    assert!(url.contains("sentinel_password=") && url.contains(":rsession-data@"), "the test set wants both passwords: {url}");
    let mut right = store_at(&url, "auth", "");
    write(&mut right, &id("x"), b"1");
    let mut bad_sentinel = store_at(&url.replace("sentinel_password=", "sentinel_password=wrong"), "auth", "");
    let e = bad_sentinel.read(&id("x")).unwrap_err().to_string();
    assert!(e.contains("no sentinel named the master") && e.contains("WRONGPASS"), "{e}");
    let mut bad_master = store_at(&url.replace(":rsession-data@", ":wrong@"), "auth", "");
    let e = bad_master.read(&id("x")).unwrap_err().to_string();
    assert!(e.contains("cannot connect") && e.contains("WRONGPASS"), "{e}");
}

/// While a slot migrates, a script on the source may only touch keys it
/// has (a missing one is ASKed for, or TRYAGAIN): freeing a lock must not
/// delete the wake list and then create it again.
#[test]
fn cluster_a_lock_is_freed_on_a_slot_being_migrated() {
    let mut a = open(On::Cluster, "freemigrating");
    let masters = a.router.masters();
    for (i, release_by_write) in [false, true].into_iter().enumerate() {
        let s = id(&format!("freemigrating{i}{}", std::process::id()));
        let keys = a.keys(&s);
        write(&mut a, &s, b"x");
        let Locked::Acquired { token, record: Some(rec) } = a.lock_and_read(&s, &req(0, 5000)).unwrap() else { panic!() };
        // A wake-up waits on the list: all three keys are on the source.
        command(&mut a, &[b"RPUSH", keys.wake.as_bytes(), b"1"]);
        let from = a.router.node_of(keys.slot).unwrap();
        let to = masters.iter().find(|m| **m != from).unwrap().clone();
        let (mut src, mut dst) = (direct(&from), direct(&to));
        let (src_id, dst_id) = (node_id(&mut src), node_id(&mut dst));
        let slot = keys.slot.to_string();
        setslot(&mut dst, &slot, b"IMPORTING", &src_id);
        setslot(&mut src, &slot, b"MIGRATING", &dst_id);
        let freed = if release_by_write {
            let p = Put { existed: true, ..put(Save::Write(b"y"), &rec.meta, TTL, LockUse::Release(token)) };
            a.save(&s, &p).map(|_| ())
        } else {
            a.unlock(&s, token)
        };
        for c in [&mut src, &mut dst] {
            c.query_one(&[b"CLUSTER", b"SETSLOT", slot.as_bytes(), b"STABLE"]).unwrap();
        }
        freed.unwrap_or_else(|e| panic!("release_by_write={release_by_write}: {e}"));
        let written = if release_by_write { b"y" } else { b"x" };
        assert_eq!(read_data(&mut a, &s).as_deref(), Some(&written[..]));
        assert_eq!(src.query_one(&[b"EXISTS", keys.lock.as_bytes()]).unwrap(), Reply::Int(0), "the lock is gone");
        let left = src.query_one(&[b"LLEN", keys.wake.as_bytes()]).unwrap();
        assert_eq!(left, Reply::Int(1), "one wake-up is left for the next waiter");
    }
}
