//! `TokenKey`: which token, for which account, with which scopes.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::OnceLock;

use triomphe::ThinArc;

use crate::token::ProviderId;

/// The hash every key stores: foldhash, seeded once per process at random
/// (keys may come from untrusted input; a fixed seed would let it choose
/// collisions).
fn key_hash(text: &[u8]) -> u64 {
    static STATE: OnceLock<foldhash::fast::RandomState> = OnceLock::new();
    STATE
        .get_or_init(foldhash::fast::RandomState::default)
        .hash_one(text)
}

/// How long a key [`TokenKey::new`] builds on its fast path may be.
const FAST: usize = 128;

/// True when `part` holds a character that [`escape`] changes.
fn needs_escape(part: &[u8]) -> bool {
    // Eight bytes at a time: a byte equal to `c` is a zero byte of `v ^ c…c`
    // (the classic exact "has a zero byte" test).
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has = |v: u64, c: u8| {
        let x = v ^ (ONES * u64::from(c));
        x.wrapping_sub(ONES) & !x & HIGH != 0
    };
    let mut chunks = part.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_le_bytes(word);
        if has(v, b'%') || has(v, b'|') || has(v, b' ') {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| matches!(b, b'%' | b'|' | b' '))
}

/// Identifies one token: a provider, an account at it (a Hike store, a
/// HyperSKU user, a partner client) and the scopes it was granted for.
///
/// Two keys that differ in any part are never merged: one account may hold
/// tokens for different scope sets side by side. Scopes are sorted and
/// deduplicated, so their order does not matter.
///
/// The key is one shared string (`provider|account|scopes`, with `%` and `|`
/// escaped in the parts), the primary key of the SQL stores. It is one
/// allocation holding the text and its hash (computed once, when the key
/// is built), behind a one-word pointer: cloning is a reference-count
/// increment, hashing reads the stored hash, and comparing two clones of
/// one key compares pointers.
#[derive(Clone)]
pub struct TokenKey(ThinArc<u64, u8>);

impl TokenKey {
    /// The key of `account`'s token at `provider`, with no particular
    /// scopes. Cheap enough to build per request: one allocation (the
    /// shared string and its hash), the parts escaped on a stack buffer.
    /// Keeping the key (or a clone) for a long-lived account is cheaper
    /// still: a lookup with a clone of the key the manager holds compares
    /// pointers instead of text.
    pub fn new(provider: &ProviderId, account: &str) -> Self {
        let (p, a) = (provider.as_str().as_bytes(), account.as_bytes());
        let len = p.len() + a.len() + 2;
        if len <= FAST && !needs_escape(p) && !needs_escape(a) {
            // The common case: nothing to escape, short.
            let mut buf = [0u8; FAST];
            buf[..p.len()].copy_from_slice(p);
            buf[p.len()] = b'|';
            buf[p.len() + 1..len - 1].copy_from_slice(a);
            buf[len - 1] = b'|';
            // Two `&str`s and ASCII separators: valid UTF-8.
            return Self::from_utf8(&buf[..len]);
        }
        let mut text = KeyText::default();
        text.push_escaped(provider.as_str());
        text.push_str("|");
        text.push_escaped(account);
        text.push_str("|");
        Self::from_text(text.as_str())
    }

    /// The key of the canonical text `text` (already escaped).
    fn from_text(text: &str) -> Self {
        Self::from_utf8(text.as_bytes())
    }

    /// [`TokenKey::from_text`] of bytes the caller knows to be UTF-8
    /// ([`TokenKey::as_str`] relies on it).
    fn from_utf8(text: &[u8]) -> Self {
        Self(ThinArc::from_header_and_slice(key_hash(text), text))
    }

    /// The hash of the key's text (the same for equal keys in one process,
    /// seeded at random per process).
    pub(crate) fn hash_value(&self) -> u64 {
        self.0.header.header
    }

    /// The key of `account`'s token at `provider` for `scopes`.
    pub fn with_scopes<I, S>(provider: &ProviderId, account: &str, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut scopes: Vec<String> = scopes.into_iter().map(|s| escape(s.as_ref())).collect();
        scopes.sort_unstable();
        scopes.dedup();
        let text = format!(
            "{}|{}|{}",
            escape(provider.as_str()),
            escape(account),
            scopes.join(" ")
        );
        Self::from_text(&text)
    }

    /// Rebuilds a key from [`TokenKey::as_str`] (as read from a store).
    /// Returns `None` if the text is not a key.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('|');
        let (provider, account, scopes) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || provider.is_empty() {
            return None;
        }
        let scopes: Vec<String> = scopes
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(unescape)
            .collect();
        Some(Self::with_scopes(
            &ProviderId::new(unescape(provider)),
            &unescape(account),
            scopes,
        ))
    }

    /// The key as one string, e.g. `hike|store-42|`.
    pub fn as_str(&self) -> &str {
        // SAFETY: the bytes are UTF-8 (`from_utf8`'s callers) and are
        // never changed.
        unsafe { std::str::from_utf8_unchecked(&self.0.slice) }
    }

    /// The provider part.
    pub fn provider(&self) -> ProviderId {
        ProviderId::new(unescape(self.part(0)))
    }

    /// The account part.
    pub fn account(&self) -> String {
        unescape(self.part(1))
    }

    /// The scopes part, sorted.
    pub fn scopes(&self) -> Vec<String> {
        self.part(2)
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(unescape)
            .collect()
    }

    fn part(&self, index: usize) -> &str {
        self.as_str().split('|').nth(index).unwrap_or("")
    }
}

/// A key's text while it is built: on the stack while it fits.
struct KeyText {
    stack: [u8; KeyText::STACK],
    len: usize,
    heap: Option<String>,
}

impl Default for KeyText {
    fn default() -> Self {
        Self {
            stack: [0; Self::STACK],
            len: 0,
            heap: None,
        }
    }
}

impl KeyText {
    const STACK: usize = 192;

    fn push_str(&mut self, part: &str) {
        if let Some(heap) = &mut self.heap {
            heap.push_str(part);
        } else if self.len + part.len() <= Self::STACK {
            self.stack[self.len..self.len + part.len()].copy_from_slice(part.as_bytes());
            self.len += part.len();
        } else {
            let mut heap = String::with_capacity(self.len + part.len() + 16);
            heap.push_str(self.as_str());
            heap.push_str(part);
            self.heap = Some(heap);
        }
    }

    /// `part` with `%`, `|` and spaces escaped.
    fn push_escaped(&mut self, part: &str) {
        if !needs_escape(part.as_bytes()) {
            return self.push_str(part);
        }
        for piece in part.split_inclusive(['%', '|', ' ']) {
            let (text, special) = match piece.as_bytes().last() {
                Some(b'%') => (&piece[..piece.len() - 1], "%25"),
                Some(b'|') => (&piece[..piece.len() - 1], "%7C"),
                Some(b' ') => (&piece[..piece.len() - 1], "%20"),
                _ => (piece, ""),
            };
            self.push_str(text);
            self.push_str(special);
        }
    }

    fn as_str(&self) -> &str {
        match &self.heap {
            Some(heap) => heap,
            // Only whole `&str`s are copied in, so this is valid UTF-8.
            None => std::str::from_utf8(&self.stack[..self.len]).unwrap_or_default(),
        }
    }
}

fn escape(part: &str) -> String {
    part.replace('%', "%25")
        .replace('|', "%7C")
        .replace(' ', "%20")
}

fn unescape(part: &str) -> String {
    part.replace("%20", " ")
        .replace("%7C", "|")
        .replace("%25", "%")
}

impl PartialEq for TokenKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ptr() == other.0.ptr()
            || (self.hash_value() == other.hash_value() && self.0.slice == other.0.slice)
    }
}

impl Eq for TokenKey {}

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash_value());
    }
}

impl PartialOrd for TokenKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// By text (as the stores sort their primary keys).
impl Ord for TokenKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// The map hasher for [`TokenKey`]s: passes the key's stored hash through.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KeyHashBuilder;

/// See [`KeyHashBuilder`].
#[derive(Debug, Default)]
pub(crate) struct KeyHasher(u64);

impl BuildHasher for KeyHashBuilder {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
    /// Not used by `TokenKey` (which writes one `u64`); mixes anything
    /// else in all the same.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIKE: ProviderId = ProviderId::from_static("hike");

    #[test]
    fn scopes_are_canonical_and_part_of_the_identity() {
        let a = TokenKey::with_scopes(&HIKE, "store-1", ["b", "a", "a"]);
        let b = TokenKey::with_scopes(&HIKE, "store-1", ["a", "b"]);
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "hike|store-1|a b");
        assert_ne!(a, TokenKey::new(&HIKE, "store-1"));
        assert_ne!(
            TokenKey::new(&HIKE, "store-1"),
            TokenKey::new(&HIKE, "store-2")
        );
    }

    #[test]
    fn the_fast_constructor_matches_the_general_one() {
        let long = "x".repeat(500);
        for (provider, account) in [
            ("hike", "store-42"),
            ("p|q", "a b%c|d"),
            ("hike", long.as_str()),
            ("h", "%%||  "),
            ("hike", "ünïcødé-账户"),
            ("hike", &long[..126 - 4]),
            ("hike", &long[..127 - 4]),
        ] {
            let provider = ProviderId::new(provider);
            assert_eq!(
                TokenKey::new(&provider, account),
                TokenKey::with_scopes(&provider, account, std::iter::empty::<&str>())
            );
            assert_eq!(TokenKey::new(&provider, account).account(), account);
        }
    }

    #[test]
    fn equal_keys_hash_alike_and_order_by_text() {
        use std::hash::BuildHasher;
        let a = TokenKey::new(&HIKE, "store-1");
        let b = TokenKey::parse("hike|store-1|").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.hash_value(), b.hash_value());
        assert_eq!(KeyHashBuilder.hash_one(&a), KeyHashBuilder.hash_one(&b));
        let c = TokenKey::new(&HIKE, "store-2");
        assert_ne!(a, c);
        assert!(a < c);
        assert_eq!(a.clone(), a);
        assert_eq!(std::mem::size_of::<TokenKey>(), 8);
    }

    #[test]
    fn separators_in_parts_are_escaped_and_round_trip() {
        let key = TokenKey::with_scopes(&HIKE, "a|b c%", ["x|y"]);
        assert_eq!(key.account(), "a|b c%");
        assert_eq!(key.scopes(), ["x|y"]);
        assert_eq!(key.provider(), HIKE);
        assert_eq!(TokenKey::parse(key.as_str()), Some(key));
        assert_eq!(TokenKey::parse("no separators"), None);
    }
}
