//! The in-memory copy of every subdomain's TXT values that a DNS responder answers from.
//!
//! Reads (the DNS hot path) are lock-free: an `ArcSwap` load and a papaya lookup,
//! no mutex, no I/O. Writes come from a single [`Follower`](crate::Follower) task;
//! a snapshot builds a whole new map and swaps it in, so readers never see a
//! half-loaded state.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use certdns_core::{Subdomain, TxtState, TxtValue};

use crate::Change;

/// What a replica holds for one subdomain. Challenge values are stored back to
/// back (each exactly [`TxtValue::LEN`] bytes) in one allocation to keep a
/// million entries in a few hundred bytes each; a persist registration's record
/// (any length up to `PersistRecord::MAX_LEN`) is held as its own kind, never
/// cut into 43-byte pieces.
struct Entry {
    version: u64,
    txt: Held,
}

enum Held {
    /// A removed subdomain (a tombstone), kept so that an older, late-arriving
    /// upsert cannot bring it back.
    Removed,
    /// Challenge values, newest first, packed.
    Values(Box<[u8]>),
    /// One dns-persist-01 record, its TXT text.
    Record(Box<[u8]>),
}

impl Entry {
    fn from_change(change: &Change) -> Self {
        match change {
            Change::Upsert(state) => Entry { version: state.version, txt: pack(state) },
            Change::Remove { version, .. } => Entry { version: *version, txt: Held::Removed },
        }
    }
}

fn pack(state: &TxtState) -> Held {
    match &state.persist {
        Some(record) => Held::Record(record.to_txt().into_bytes().into_boxed_slice()),
        None => Held::Values(state.values.iter().flat_map(|v| v.as_str().bytes()).collect()),
    }
}

/// Subdomains are random UUIDs chosen by us, so folding the two halves is a
/// perfectly spread hash; no need to pay for SipHash on every query.
#[derive(Clone, Default)]
struct UuidHash;

#[derive(Default)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
    fn write_u128(&mut self, v: u128) {
        // Truncations intended: fold the high half onto the low half.
        self.0 = (v as u64) ^ ((v >> 64) as u64);
    }
}

impl BuildHasher for UuidHash {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher::default()
    }
}

type Map = papaya::HashMap<u128, Entry, UuidHash>;

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxtLookup<'a> {
    /// No registration has this subdomain (or it was removed).
    Unknown,
    /// Not held, and the replica has not loaded a complete snapshot yet: whether
    /// the name exists is not known (a responder must not say NXDOMAIN, which
    /// resolvers cache).
    NotLoaded,
    /// A registration exists; these are its values, newest first (maybe none).
    Values(TxtValues<'a>),
}

/// Iterator over a subdomain's values as byte strings, newest first: 43-byte
/// challenge values, or the one persist record of any length. A responder
/// writes each as one TXT record of 255-byte character-strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxtValues<'a> {
    rest: &'a [u8],
    /// Fixed-size challenge values (else one record, whole).
    fixed: bool,
}

impl<'a> Iterator for TxtValues<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let take = if self.fixed { TxtValue::LEN } else { self.rest.len() };
        if take == 0 || self.rest.len() < take {
            return None;
        }
        let (head, rest) = self.rest.split_at(take);
        self.rest = rest;
        Some(head)
    }
}

impl TxtValues<'_> {
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

#[derive(Default)]
pub struct Replica {
    map: ArcSwap<Map>,
    applied: AtomicU64,
    /// A complete snapshot was loaded: a name not held does not exist. Never
    /// cleared; later changes and merges keep the set complete.
    loaded: AtomicBool,
}

impl Replica {
    /// An empty replica waiting for its first complete snapshot ([`reset`](Self::reset)):
    /// until then a name it does not hold looks up as [`TxtLookup::NotLoaded`].
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A replica holding exactly these states, a complete set (tests and tools).
    pub fn with_states(states: &[TxtState]) -> Arc<Self> {
        let replica = Self::new();
        replica.reset(states);
        replica
    }

    /// Looks a subdomain up and hands the result to `f` (the values borrow from the
    /// replica only for the duration of the call).
    pub fn lookup<R>(&self, subdomain: Subdomain, f: impl FnOnce(TxtLookup<'_>) -> R) -> R {
        let map = self.map.load();
        let pinned = map.pin();
        match pinned.get(&subdomain.as_u128()) {
            Some(Entry { txt: Held::Values(txt), .. }) => f(TxtLookup::Values(TxtValues { rest: txt, fixed: true })),
            Some(Entry { txt: Held::Record(txt), .. }) => f(TxtLookup::Values(TxtValues { rest: txt, fixed: false })),
            // A tombstone is known to be gone, loaded or not.
            Some(Entry { txt: Held::Removed, .. }) => f(TxtLookup::Unknown),
            None if self.is_loaded() => f(TxtLookup::Unknown),
            None => f(TxtLookup::NotLoaded),
        }
    }

    /// The version held for a subdomain, tombstones included.
    pub fn version(&self, subdomain: Subdomain) -> Option<u64> {
        self.map.load().pin().get(&subdomain.as_u128()).map(|e| e.version)
    }

    /// Convenience for tests and tools: the values as owned strings.
    pub fn values(&self, subdomain: Subdomain) -> Option<Vec<String>> {
        self.lookup(subdomain, |l| match l {
            TxtLookup::Unknown | TxtLookup::NotLoaded => None,
            TxtLookup::Values(v) => Some(v.map(|b| String::from_utf8_lossy(b).into_owned()).collect()),
        })
    }

    /// Applies one change if it is newer than what the replica holds for that
    /// subdomain. Returns whether it was applied.
    ///
    /// Must be called from one task at a time (the follower): the check and the
    /// insert are two steps.
    pub fn apply(&self, change: &Change) -> bool {
        let map = self.map.load();
        let pinned = map.pin();
        let key = change.subdomain().as_u128();
        if pinned.get(&key).is_some_and(|held| held.version >= change.version()) {
            return false;
        }
        pinned.insert(key, Entry::from_change(change));
        self.applied.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Replaces the whole content with a snapshot.
    pub fn reset(&self, states: &[TxtState]) {
        self.reset_from(states.len(), states.iter().map(|s| (s.subdomain, s.version, pack(s))));
    }

    /// Like [`reset`](Self::reset), freeing each state as soon as it is copied in.
    /// With a million registrations this roughly halves the resident size after a
    /// snapshot load: the snapshot's small allocations are reused by the replica's
    /// instead of staying behind as heap holes.
    pub fn reset_owned(&self, states: Vec<TxtState>) {
        self.reset_from(states.len(), states.into_iter().map(|s| (s.subdomain, s.version, pack(&s))));
    }

    fn reset_from(&self, len: usize, entries: impl Iterator<Item = (Subdomain, u64, Held)>) {
        let map = Map::with_capacity_and_hasher(len, UuidHash);
        {
            let pinned = map.pin();
            for (subdomain, version, txt) in entries {
                pinned.insert(subdomain.as_u128(), Entry { version, txt });
            }
        }
        self.map.store(Arc::new(map));
        self.loaded.store(true, Ordering::Release);
    }

    /// Whether a complete snapshot was loaded (see [`TxtLookup::NotLoaded`]).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Number of entries, tombstones included.
    pub fn len(&self) -> usize {
        self.map.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Changes applied since start (for metrics).
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(c: char) -> TxtValue {
        TxtValue::parse(&c.to_string().repeat(43)).unwrap()
    }

    fn upsert(subdomain: Subdomain, version: u64, values: &[char]) -> Change {
        Change::Upsert(TxtState::values(subdomain, version, values.iter().map(|c| value(*c)).collect()))
    }

    #[test]
    fn newest_version_wins_whatever_the_arrival_order() {
        let r = Replica::default();
        let s = Subdomain::generate();
        assert!(r.apply(&upsert(s, 2, &['b', 'a'])));
        assert!(!r.apply(&upsert(s, 1, &['a'])), "older change ignored");
        assert!(!r.apply(&upsert(s, 2, &['x'])), "same version ignored");
        assert_eq!(r.values(s).unwrap(), ["b".repeat(43), "a".repeat(43)]);
        assert!(r.apply(&upsert(s, 3, &['c', 'b'])));
        assert_eq!(r.values(s).unwrap(), ["c".repeat(43), "b".repeat(43)]);
    }

    #[test]
    fn removal_is_sticky_against_older_upserts() {
        let r = Replica::default();
        let s = Subdomain::generate();
        r.apply(&upsert(s, 1, &['a']));
        assert!(r.apply(&Change::Remove { subdomain: s, version: 2 }));
        assert_eq!(r.values(s), None);
        assert!(!r.apply(&upsert(s, 1, &['a'])), "a late upsert must not resurrect it");
        assert_eq!(r.values(s), None);
        assert_eq!(r.version(s), Some(2));
    }

    #[test]
    fn registered_without_values_is_not_unknown() {
        let r = Replica::default();
        let s = Subdomain::generate();
        r.apply(&upsert(s, 0, &[]));
        r.lookup(s, |l| assert!(matches!(l, TxtLookup::Values(v) if v.is_empty())));
        // Before a complete snapshot, a name not held is not known to be absent.
        r.lookup(Subdomain::generate(), |l| assert_eq!(l, TxtLookup::NotLoaded));
        let r = Replica::with_states(&[TxtState::values(s, 0, vec![])]);
        r.lookup(s, |l| assert!(matches!(l, TxtLookup::Values(v) if v.is_empty())));
        r.lookup(Subdomain::generate(), |l| assert_eq!(l, TxtLookup::Unknown));
        assert!(r.is_loaded());
    }

    #[test]
    fn a_persist_record_is_one_value_of_its_own_length() {
        let r = Replica::default();
        let s = Subdomain::generate();
        let text = format!(
            "{}example; accounturi=https://ca.example/h/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw",
            format!("{}.", "i".repeat(60)).repeat(3)
        );
        let record = certdns_core::PersistRecord::parse(&text).unwrap();
        assert!(text.len() > 255, "longer than one character-string");
        r.apply(&Change::Upsert(TxtState { subdomain: s, version: 1, values: vec![], persist: Some(record) }));
        assert_eq!(r.values(s).unwrap(), [text]);
        // Updated back to a state without a record, it answers nothing.
        r.apply(&upsert(s, 2, &[]));
        r.lookup(s, |l| assert!(matches!(l, TxtLookup::Values(v) if v.is_empty())));
    }

    #[test]
    fn reset_replaces_everything() {
        let r = Replica::default();
        let gone = Subdomain::generate();
        r.apply(&upsert(gone, 5, &['z']));
        let kept = Subdomain::generate();
        r.reset(&[TxtState::values(kept, 1, vec![value('k')])]);
        assert_eq!(r.values(gone), None);
        assert_eq!(r.values(kept).unwrap(), ["k".repeat(43)]);
        assert_eq!(r.len(), 1);
    }
}
