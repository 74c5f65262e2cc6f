//! The six Digest algorithms of RFC 7616 and the hashes they are built on.
//!
//! ```
//! use rocket_digest_auth::protocol::Algorithm;
//!
//! let alg: Algorithm = "sha-256".parse().unwrap();
//! assert_eq!(alg, Algorithm::Sha256);
//! assert_eq!(alg.hash(b"abc").len(), 64);
//! ```

use std::fmt;
use std::str::FromStr;

use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512_256};
use subtle::ConstantTimeEq;

/// The hash function under an [`Algorithm`]; `-sess` variants share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashFunction {
    /// MD5 (RFC 1321).
    Md5,
    /// SHA-256 (FIPS 180-4).
    Sha256,
    /// SHA-512/256 (FIPS 180-4), not SHA-512 truncated: see RFC 7616 erratum 4897.
    Sha512_256,
}

impl HashFunction {
    /// Every hash function, in the order their columns appear in the stores.
    pub const ALL: [HashFunction; 3] = [Self::Md5, Self::Sha256, Self::Sha512_256];

    /// Lower-case hex digest of the concatenation of `parts`, on the stack.
    pub fn hex_digest(self, parts: &[&[u8]]) -> HexDigest {
        let mut h = Hasher::new(self);
        h.update_all(parts);
        h.finish()
    }

    /// [`hex_digest`](Self::hex_digest) as a `String`, for values that are kept.
    pub fn hex(self, parts: &[&[u8]]) -> String {
        self.hex_digest(parts).as_str().to_owned()
    }

    /// Length of the hex digest.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Md5 => 32,
            Self::Sha256 | Self::Sha512_256 => 64,
        }
    }
}

/// A running hash of one of the three functions. Cloning it copies the
/// state, so a common prefix is hashed once for several digests.
#[derive(Clone)]
pub(crate) enum Hasher {
    Md5(Md5),
    Sha256(Sha256),
    Sha512_256(Sha512_256),
}

impl Hasher {
    pub(crate) fn new(h: HashFunction) -> Hasher {
        match h {
            HashFunction::Md5 => Hasher::Md5(Md5::new()),
            HashFunction::Sha256 => Hasher::Sha256(Sha256::new()),
            HashFunction::Sha512_256 => Hasher::Sha512_256(Sha512_256::new()),
        }
    }

    /// The function this hashes with.
    pub(crate) fn function(&self) -> HashFunction {
        match self {
            Hasher::Md5(_) => HashFunction::Md5,
            Hasher::Sha256(_) => HashFunction::Sha256,
            Hasher::Sha512_256(_) => HashFunction::Sha512_256,
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Md5(d) => d.update(bytes),
            Hasher::Sha256(d) => d.update(bytes),
            Hasher::Sha512_256(d) => d.update(bytes),
        }
    }

    /// Hashes the concatenation of `parts`, gathered on the stack first:
    /// a copy costs less than an update of the hash's own buffer.
    pub(crate) fn update_all(&mut self, parts: &[&[u8]]) {
        let mut gathered = [0u8; 128];
        let mut len = 0;
        for part in parts {
            if len + part.len() > gathered.len() {
                self.update(&gathered[..len]);
                len = 0;
                if part.len() > gathered.len() {
                    self.update(part);
                    continue;
                }
            }
            gathered[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        self.update(&gathered[..len]);
    }

    /// The digest in lower-case hex.
    pub(crate) fn finish(self) -> HexDigest {
        match self {
            Hasher::Md5(d) => HexDigest::of(&d.finalize()),
            Hasher::Sha256(d) => HexDigest::of(&d.finalize()),
            Hasher::Sha512_256(d) => HexDigest::of(&d.finalize()),
        }
    }
}

/// A lower-case hex digest of at most 32 bytes (64 digits), kept on the
/// stack: the intermediate hashes of a request need no allocation.
#[derive(Clone, Copy)]
pub struct HexDigest {
    len: u8,
    digits: [u8; 64],
}

impl HexDigest {
    fn of(bytes: &[u8]) -> HexDigest {
        // Both digits of a byte from one table load.
        const PAIRS: [[u8; 2]; 256] = {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            let mut pairs = [[0u8; 2]; 256];
            let mut b = 0;
            while b < 256 {
                pairs[b] = [DIGITS[b >> 4], DIGITS[b & 0x0f]];
                b += 1;
            }
            pairs
        };
        let mut digits = [0u8; 64];
        for (i, &b) in bytes.iter().take(32).enumerate() {
            let [high, low] = PAIRS[usize::from(b)];
            digits[2 * i] = high;
            digits[2 * i + 1] = low;
        }
        HexDigest {
            len: (bytes.len().min(32) * 2) as u8,
            digits,
        }
    }

    /// A digest already in hex (a stored HA1): `None` unless it is at most
    /// 64 ASCII hex digits.
    pub(crate) fn from_hex(hex: &str) -> Option<HexDigest> {
        if hex.len() > 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut digits = [0u8; 64];
        digits[..hex.len()].copy_from_slice(hex.as_bytes());
        Some(HexDigest {
            len: hex.len() as u8,
            digits,
        })
    }

    /// Whether `hex` is these digits, in a time that does not depend on
    /// where they differ (only on the length, which the algorithm fixes).
    pub(crate) fn ct_matches(&self, hex: &str) -> bool {
        let (ours, theirs) = (self.as_bytes(), hex.as_bytes());
        if ours.len() != theirs.len() {
            return false;
        }
        // Eight digits at a time: a constant-time compare per word, not per byte.
        let (ours_words, theirs_words) = (ours.chunks_exact(8), theirs.chunks_exact(8));
        let mut equal = ours_words.remainder().ct_eq(theirs_words.remainder());
        for (a, b) in ours_words.zip(theirs_words) {
            let word = |w: &[u8]| u64::from_ne_bytes(w.try_into().unwrap_or_default());
            equal &= word(a).ct_eq(&word(b));
        }
        equal.into()
    }

    /// The hex digits as bytes (no UTF-8 check, unlike [`as_str`](Self::as_str)).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.digits[..usize::from(self.len)]
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.digits[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::ops::Deref for HexDigest {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for HexDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for HexDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for HexDigest {
    fn eq(&self, other: &HexDigest) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for HexDigest {}

impl PartialEq<str> for HexDigest {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for HexDigest {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for HexDigest {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl From<HexDigest> for String {
    fn from(h: HexDigest) -> String {
        h.as_str().to_owned()
    }
}

/// A Digest `algorithm` parameter value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Algorithm {
    /// `MD5`: RFC 2617's default, the only one many old clients know.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256`.
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// All six, strongest first.
    pub const ALL: [Algorithm; 6] = [
        Self::Sha512_256,
        Self::Sha512_256Sess,
        Self::Sha256,
        Self::Sha256Sess,
        Self::Md5,
        Self::Md5Sess,
    ];

    /// The name as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
            Self::Sha512_256 => "SHA-512-256",
            Self::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// The underlying hash function.
    pub fn hash_function(self) -> HashFunction {
        match self {
            Self::Md5 | Self::Md5Sess => HashFunction::Md5,
            Self::Sha256 | Self::Sha256Sess => HashFunction::Sha256,
            Self::Sha512_256 | Self::Sha512_256Sess => HashFunction::Sha512_256,
        }
    }

    /// Whether this is a `-sess` variant (HA1 also covers nonce and cnonce).
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Self::Md5Sess | Self::Sha256Sess | Self::Sha512_256Sess
        )
    }

    /// Lower-case hex digest of `data` with this algorithm's hash.
    pub fn hash(self, data: &[u8]) -> String {
        self.hash_function().hex(&[data])
    }

    /// As [`hash`](Self::hash), on the stack.
    pub fn hash_digest(self, data: &[u8]) -> HexDigest {
        self.hash_function().hex_digest(&[data])
    }
}

impl From<Algorithm> for HashFunction {
    fn from(a: Algorithm) -> HashFunction {
        a.hash_function()
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for an `algorithm` name this crate does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Digest algorithm `{0}` (expected one of MD5, MD5-sess, SHA-256, SHA-256-sess, SHA-512-256, SHA-512-256-sess)")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Case-insensitive, as clients differ (`MD5-SESS` from Python requests).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownAlgorithm(s.to_owned()))
    }
}

impl TryFrom<String> for Algorithm {
    type Error = UnknownAlgorithm;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Algorithm> for String {
    fn from(a: Algorithm) -> String {
        a.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_matches_its_own_digits_only() {
        let digest = HashFunction::Sha256.hex_digest(&[b"abc"]);
        let digits = digest.as_str().to_owned();
        assert!(digest.ct_matches(&digits));
        for i in 0..digits.len() {
            let mut other = digits.clone().into_bytes();
            other[i] = if other[i] == b'0' { b'1' } else { b'0' };
            assert!(
                !digest.ct_matches(std::str::from_utf8(&other).unwrap()),
                "digit {i}"
            );
        }
        assert!(!digest.ct_matches(&digits[..63]));
        assert!(!digest.ct_matches(""));
        let md5 = HashFunction::Md5.hex_digest(&[b"abc"]);
        assert!(md5.ct_matches(md5.as_str()));
        assert!(!md5.ct_matches(&digits[..32]));
    }

    #[test]
    fn names_round_trip_case_insensitively() {
        for a in Algorithm::ALL {
            assert_eq!(a.as_str().to_uppercase().parse::<Algorithm>(), Ok(a));
            assert_eq!(a.to_string().parse::<Algorithm>(), Ok(a));
        }
        assert!("SHA-512".parse::<Algorithm>().is_err());
    }

    #[test]
    fn sha512_256_is_the_fips_function_not_truncated_sha512() {
        // FIPS 180-4 example "abc".
        assert_eq!(
            Algorithm::Sha512_256.hash(b"abc"),
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
        );
    }
}
