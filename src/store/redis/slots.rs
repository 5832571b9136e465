//! Redis Cluster's key space: which of the 16384 hash slots a key is in
//! (CRC16-XMODEM of the key, or of its hash tag), and the slot map a
//! cluster reports in `CLUSTER SLOTS`.
//!
//! Ours rather than a crate's: the hash is twenty lines with a table made
//! at compile time, the tag rule five, and the map needs only the slots'
//! masters; the tests below are the cluster specification's own vectors.

use super::resp::Reply;

pub const SLOTS: usize = 16384;

/// CRC16 with the XMODEM parameters (polynomial 0x1021, initial value 0,
/// no reflection), as the cluster specification defines it.
pub fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &b| (crc << 8) ^ TABLE[usize::from((crc >> 8) as u8 ^ b)])
}

const TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The part of a key that is hashed: what lies between its first `{` and
/// the first `}` after it, unless that is empty; else the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) & (SLOTS as u16 - 1)
}

/// A node as `CLUSTER SLOTS` names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeAddr {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') { write!(f, "[{}]:{}", self.host, self.port) } else { write!(f, "{}:{}", self.host, self.port) }
    }
}

/// Which master serves each slot.
#[derive(Debug, Clone)]
pub struct SlotMap {
    pub masters: Vec<NodeAddr>,
    /// Per slot, an index into `masters`; `NONE` for a slot nobody serves.
    owner: Box<[u16]>,
}

const NONE: u16 = u16::MAX;

impl SlotMap {
    /// The map in a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, …],
    /// replica…], …]`. A node listed with an empty host is the one that
    /// answered (`asked`); one with host `?` (no address known) is left out.
    pub fn parse(reply: &Reply, asked: &NodeAddr) -> Result<SlotMap, String> {
        let Reply::Array(ranges) = reply else { return Err("CLUSTER SLOTS: not an array".into()) };
        let mut map = SlotMap { masters: Vec::new(), owner: vec![NONE; SLOTS].into_boxed_slice() };
        for range in ranges {
            let Reply::Array(parts) = range else { return Err("CLUSTER SLOTS: a range is not an array".into()) };
            let (Some(Reply::Int(start)), Some(Reply::Int(end)), Some(Reply::Array(master))) = (parts.first(), parts.get(1), parts.get(2))
            else {
                return Err("CLUSTER SLOTS: a range without its slots and master".into());
            };
            let (Ok(start), Ok(end)) = (usize::try_from(*start), usize::try_from(*end)) else {
                return Err("CLUSTER SLOTS: a negative slot".into());
            };
            if start > end || end >= SLOTS {
                return Err(format!("CLUSTER SLOTS: bad slot range {start}-{end}"));
            }
            let (Some(Reply::Bytes(host)), Some(Reply::Int(port))) = (master.first(), master.get(1)) else {
                return Err("CLUSTER SLOTS: a master without host and port".into());
            };
            let host = match std::str::from_utf8(host) {
                Ok("") => asked.host.clone(),
                Ok("?") => continue,
                Ok(h) => h.to_string(),
                Err(_) => return Err("CLUSTER SLOTS: a host that is not text".into()),
            };
            let port = u16::try_from(*port).ok().filter(|p| *p > 0).ok_or("CLUSTER SLOTS: a bad port")?;
            let node = NodeAddr { host, port };
            let index = match map.masters.iter().position(|m| *m == node) {
                Some(i) => i,
                None => {
                    map.masters.push(node);
                    map.masters.len() - 1
                }
            };
            map.owner[start..=end].fill(index as u16);
        }
        if map.masters.is_empty() {
            return Err("CLUSTER SLOTS: no slot is served".into());
        }
        Ok(map)
    }

    pub fn master_of(&self, slot: u16) -> Option<&NodeAddr> {
        self.masters.get(usize::from(*self.owner.get(usize::from(slot))?))
    }

    /// Records what a MOVED reply says, until the map is read again.
    pub fn moved(&mut self, slot: u16, node: NodeAddr) {
        let index = match self.masters.iter().position(|m| *m == node) {
            Some(i) => i,
            None => {
                self.masters.push(node);
                self.masters.len() - 1
            }
        };
        if let Some(o) = self.owner.get_mut(usize::from(slot)) {
            *o = index as u16;
        }
    }
}

/// What a cluster's error reply asks of the client, if anything.
#[derive(Debug, PartialEq, Eq)]
pub enum Redirect {
    /// `MOVED slot host:port`: the slot lives there now, for good.
    Moved(u16, NodeAddr),
    /// `ASK slot host:port`: this key is there, for this one command.
    Ask(NodeAddr),
}

/// Parses `MOVED 3999 127.0.0.1:6381` or `ASK …`; an empty host means the
/// node that answered (`asked`).
pub fn redirect(message: &str, asked: &str) -> Option<Redirect> {
    let mut words = message.split(' ');
    let kind = words.next()?;
    if kind != "MOVED" && kind != "ASK" {
        return None;
    }
    let slot: u16 = words.next()?.parse().ok().filter(|s| usize::from(*s) < SLOTS)?;
    let (host, port) = words.next()?.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.is_empty() { asked.to_string() } else { host.to_string() };
    let node = NodeAddr { host, port: port.parse().ok().filter(|p| *p > 0)? };
    Some(if kind == "MOVED" { Redirect::Moved(slot, node) } else { Redirect::Ask(node) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_cluster_specification() {
        // The specification's test vector, and CRC16-XMODEM's check value.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
        assert_eq!(crc16(b"A"), 0x58E5);
    }

    #[test]
    fn key_slots_follow_hash_tags() {
        // Slots Redis itself gives these keys (CLUSTER KEYSLOT).
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"123456789"), 0x31C3 & 16383);
        // The specification's examples: only the tag is hashed.
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}", "an empty first tag: the whole key");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"foo{bar"), b"foo{bar", "no closing brace");
        // A session's keys share one slot.
        assert_eq!(key_slot(b"rsess:{abc}:s"), key_slot(b"rsess:{abc}:l"));
        assert_eq!(key_slot(b"rsess:{abc}:w"), key_slot(b"abc"));
    }

    fn node(host: &str, port: i64, id: &str) -> Reply {
        Reply::Array(vec![Reply::Bytes(host.into()), Reply::Int(port), Reply::Bytes(id.into())])
    }

    fn range(start: i64, end: i64, nodes: Vec<Reply>) -> Reply {
        let mut parts = vec![Reply::Int(start), Reply::Int(end)];
        parts.extend(nodes);
        Reply::Array(parts)
    }

    #[test]
    fn parses_cluster_slots() {
        let asked = NodeAddr { host: "10.0.0.9".into(), port: 7000 };
        let reply = Reply::Array(vec![
            range(0, 5460, vec![node("127.0.0.1", 7001, "a"), node("127.0.0.1", 7004, "d")]),
            range(5461, 10922, vec![node("", 7002, "b")]),
            range(10923, 16000, vec![node("127.0.0.1", 7003, "c")]),
            range(16001, 16383, vec![node("127.0.0.1", 7001, "a")]),
        ]);
        let map = SlotMap::parse(&reply, &asked).unwrap();
        assert_eq!(map.masters.len(), 3);
        assert_eq!(map.master_of(0).unwrap().to_string(), "127.0.0.1:7001");
        assert_eq!(map.master_of(5461).unwrap().to_string(), "10.0.0.9:7002", "an empty host is the node asked");
        assert_eq!(map.master_of(16000).unwrap().port, 7003);
        assert_eq!(map.master_of(16383).unwrap().port, 7001);
        let mut map = map;
        map.moved(100, NodeAddr { host: "127.0.0.1".into(), port: 7009 });
        assert_eq!(map.master_of(100).unwrap().port, 7009);
        assert_eq!(map.master_of(101).unwrap().port, 7001);
    }

    #[test]
    fn a_partial_map_leaves_slots_unserved_and_garbage_is_refused() {
        let asked = NodeAddr { host: "h".into(), port: 1 };
        let map = SlotMap::parse(&Reply::Array(vec![range(0, 10, vec![node("h", 2, "x")])]), &asked).unwrap();
        assert!(map.master_of(11).is_none());
        for bad in [
            Reply::Int(1),
            Reply::Array(vec![]),
            Reply::Array(vec![range(5, 4, vec![node("h", 2, "x")])]),
            Reply::Array(vec![range(0, 16384, vec![node("h", 2, "x")])]),
            Reply::Array(vec![range(0, 1, vec![node("h", 0, "x")])]),
            Reply::Array(vec![range(0, 1, vec![])]),
        ] {
            assert!(SlotMap::parse(&bad, &asked).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_redirects() {
        let moved = redirect("MOVED 3999 127.0.0.1:6381", "x").unwrap();
        assert_eq!(moved, Redirect::Moved(3999, NodeAddr { host: "127.0.0.1".into(), port: 6381 }));
        assert_eq!(redirect("ASK 1 :7000", "10.1.1.1"), Some(Redirect::Ask(NodeAddr { host: "10.1.1.1".into(), port: 7000 })));
        assert_eq!(redirect("ASK 1 [::1]:7000", "x"), Some(Redirect::Ask(NodeAddr { host: "::1".into(), port: 7000 })));
        for other in ["ERR wrong", "MOVED", "MOVED 99999 h:1", "MOVED 1 h", "MOVED 1 h:0", "TRYAGAIN Multiple keys"] {
            assert_eq!(redirect(other, "x"), None, "{other}");
        }
    }
}
