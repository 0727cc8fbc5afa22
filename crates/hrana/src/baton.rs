//! Unforgeable batons: a baton names (stream id, sequence number) and is bound to one tenant by
//! an HMAC-SHA256 under a server key. Layout, base64url without padding:
//! `tenant tag (8) | stream id (8, BE) | seq (8, BE) | HMAC (32)` where the tenant tag is a
//! SHA-256 prefix of the tenant id and the HMAC covers the first 24 bytes. Single use and
//! expiry are enforced by [`crate::stream_table::StreamTable`] via the sequence number.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const DOMAIN: &[u8] = b"tenantd-baton-v1";
const PAYLOAD: usize = 24;
const LEN: usize = PAYLOAD + 32;

/// Why a baton was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BatonError {
    /// Not base64url, or the wrong length.
    #[error("invalid baton: malformed")]
    Malformed,
    /// The MAC does not verify: tampered with, forged, or issued under another key.
    #[error("invalid baton: not issued by this server")]
    Forged,
    /// A genuine baton for a different tenant.
    #[error("invalid baton: it belongs to another tenant")]
    WrongTenant,
}

/// Encodes and verifies batons under one secret key.
#[derive(Clone)]
pub struct BatonCodec {
    key: [u8; 32],
}

impl std::fmt::Debug for BatonCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BatonCodec { key: <secret> }")
    }
}

impl BatonCodec {
    /// A codec with this key.
    pub fn new(key: [u8; 32]) -> Self {
        BatonCodec { key }
    }

    /// A codec with a fresh random key (batons then die with the process, as streams do).
    pub fn random() -> Self {
        BatonCodec {
            key: rand::random(),
        }
    }

    /// The baton for `stream` at sequence `seq`, valid only for `tenant`. Never fails.
    pub fn encode(&self, tenant: &str, stream: u64, seq: u64) -> String {
        let mut data = [0u8; LEN];
        data[..8].copy_from_slice(&tenant_tag(tenant));
        data[8..16].copy_from_slice(&stream.to_be_bytes());
        data[16..24].copy_from_slice(&seq.to_be_bytes());
        let mac = self.mac(&data[..PAYLOAD]).finalize().into_bytes();
        data[PAYLOAD..].copy_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(data)
    }

    /// `(stream, seq)` of a baton presented for `tenant`. Errors: malformed, forged or
    /// tampered, or issued for another tenant.
    pub fn decode(&self, tenant: &str, baton: &str) -> Result<(u64, u64), BatonError> {
        let data = URL_SAFE_NO_PAD
            .decode(baton)
            .map_err(|_| BatonError::Malformed)?;
        if data.len() != LEN {
            return Err(BatonError::Malformed);
        }
        self.mac(&data[..PAYLOAD])
            .verify_slice(&data[PAYLOAD..])
            .map_err(|_| BatonError::Forged)?;
        if data[..8] != tenant_tag(tenant) {
            return Err(BatonError::WrongTenant);
        }
        let word = |at: usize| u64::from_be_bytes(data[at..at + 8].try_into().expect("8 bytes"));
        Ok((word(8), word(16)))
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC accepts any key length");
        mac.update(DOMAIN);
        mac.update(payload);
        mac
    }
}

fn tenant_tag(tenant: &str) -> [u8; 8] {
    let digest = Sha256::new()
        .chain_update(b"tenantd-baton-tenant\0")
        .chain_update(tenant)
        .finalize();
    digest[..8].try_into().expect("8 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> BatonCodec {
        BatonCodec::new([7; 32])
    }

    #[test]
    fn roundtrip_and_successive_batons_differ() {
        let c = codec();
        let b1 = c.encode("acme", 42, u64::MAX);
        assert_eq!(c.decode("acme", &b1), Ok((42, u64::MAX)));
        let b2 = c.encode("acme", 42, 0);
        assert_ne!(b1, b2);
        assert!(b1
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn wrong_tenant_is_refused() {
        let c = codec();
        let b = c.encode("acme", 1, 2);
        assert_eq!(c.decode("globex", &b), Err(BatonError::WrongTenant));
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let c = codec();
        let b = c.encode("acme", 1, 2);
        let raw = URL_SAFE_NO_PAD.decode(&b).unwrap();
        for i in 0..raw.len() * 8 {
            let mut t = raw.clone();
            t[i / 8] ^= 1 << (i % 8);
            let r = c.decode("acme", &URL_SAFE_NO_PAD.encode(&t));
            assert_eq!(r, Err(BatonError::Forged), "bit {i}");
        }
    }

    #[test]
    fn other_key_and_garbage_are_refused() {
        let b = BatonCodec::new([8; 32]).encode("acme", 1, 2);
        assert_eq!(codec().decode("acme", &b), Err(BatonError::Forged));
        assert_eq!(
            codec().decode("acme", "not base64!"),
            Err(BatonError::Malformed)
        );
        assert_eq!(codec().decode("acme", "AAAA"), Err(BatonError::Malformed));
        assert_eq!(codec().decode("acme", ""), Err(BatonError::Malformed));
    }

    #[test]
    fn debug_hides_the_key() {
        assert!(!format!("{:?}", codec()).contains('7'));
    }
}
