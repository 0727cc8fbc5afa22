//! Compact JWS (JWT) with EdDSA over Ed25519: `base64url(header).base64url(claims).base64url(sig)`
//! without padding. Only `alg: EdDSA` is accepted, so no algorithm confusion is possible; the
//! signature is checked (strictly) before the claims are parsed.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::Deserialize;

use crate::claims::Claims;

const HEADER: &str = r#"{"alg":"EdDSA","typ":"JWT"}"#;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a well-formed EdDSA JWT with tenantd's claims.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The signature does not verify under our key.
    #[error("token signature is invalid")]
    BadSignature,
    /// The token's `exp` has passed.
    #[error("token has expired")]
    Expired,
    /// The token's `nbf` is in the future.
    #[error("token is not valid yet")]
    NotYetValid,
    /// A valid token for a different tenant.
    #[error("token is for another tenant")]
    WrongTenant,
    /// A token without an `epoch` claim (issued before tokens were bound to their tenant).
    #[error("token is not bound to a tenant epoch (it predates token revocation); mint a new one with `tenantd token create --tenant ID`")]
    Unbound,
    /// The tenant's tokens were revoked, or the tenant was deleted and created again, since
    /// the token was issued.
    #[error("token was revoked (the tenant's tokens were revoked, or the tenant was deleted and created again); mint a new one with `tenantd token create --tenant ID`")]
    Revoked,
}

impl AuthError {
    /// The machine-readable code clients see: `token_revoked`, `token_unbound`, else
    /// `invalid_token` (every refusal here is a 401 except [`AuthError::WrongTenant`]).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Revoked => "token_revoked",
            AuthError::Unbound => "token_unbound",
            AuthError::Malformed(_)
            | AuthError::BadSignature
            | AuthError::Expired
            | AuthError::NotYetValid
            | AuthError::WrongTenant => "invalid_token",
        }
    }
}

/// Signs `claims` into a compact JWT. Never fails.
pub fn sign(key: &SigningKey, claims: &Claims) -> String {
    // Claims are plain strings and integers: serializing cannot fail.
    let payload = serde_json::to_vec(claims).expect("claims always serialize");
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

/// Verifies `token` under `key` at time `now`. Errors: malformed, bad signature, expired,
/// not yet valid.
pub fn verify(key: &VerifyingKey, token: &str, now: SystemTime) -> Result<Claims, AuthError> {
    let malformed = |what: &str| AuthError::Malformed(what.to_owned());
    let mut parts = token.trim().split('.');
    let (Some(header), Some(payload), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected three dot-separated parts"));
    };
    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    let header: Header = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or_else(|| malformed("header is not base64url JSON"))?;
    if header.alg != "EdDSA" {
        return Err(AuthError::Malformed(format!(
            "unsupported algorithm {:?}",
            header.alg
        )));
    }
    let sig: [u8; 64] = URL_SAFE_NO_PAD
        .decode(sig)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| malformed("signature is not 64 base64url bytes"))?;
    let signed = &token.trim()[..header_len(token.trim())];
    key.verify_strict(signed.as_bytes(), &Signature::from_bytes(&sig))
        .map_err(|_| AuthError::BadSignature)?;
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| malformed("claims are not base64url"))
        .and_then(|p| {
            serde_json::from_slice(&p).map_err(|e| AuthError::Malformed(format!("claims: {e}")))
        })?;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if claims.exp.is_some_and(|exp| now >= exp) {
        return Err(AuthError::Expired);
    }
    if claims.nbf.is_some_and(|nbf| now < nbf) {
        return Err(AuthError::NotYetValid);
    }
    Ok(claims)
}

/// Length of `header.payload`, the signed part of a token known to have three parts.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Access;
    use std::time::Duration;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[3; 32])
    }

    fn claims(exp: Option<u64>) -> Claims {
        Claims {
            tenant: "acme".into(),
            epoch: Some("e".into()),
            access: Access::ReadWrite,
            exp,
            iat: None,
            nbf: None,
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn roundtrip_and_expiry_boundary() {
        let t = sign(&key(), &claims(Some(100)));
        assert_eq!(
            verify(&key().verifying_key(), &t, at(99)),
            Ok(claims(Some(100)))
        );
        assert_eq!(
            verify(&key().verifying_key(), &t, at(100)),
            Err(AuthError::Expired)
        );
        let forever = sign(&key(), &claims(None));
        assert!(verify(&key().verifying_key(), &forever, at(u32::MAX as u64)).is_ok());
    }

    #[test]
    fn header_is_sqld_compatible() {
        let t = sign(&key(), &claims(None));
        let header = URL_SAFE_NO_PAD
            .decode(t.split('.').next().unwrap())
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&header).unwrap();
        assert_eq!(v["alg"], "EdDSA");
    }

    #[test]
    fn tampered_claims_fail_the_signature() {
        let t = sign(&key(), &claims(Some(100)));
        let parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"id":"acme","a":"rw"}"#);
        let bad = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert_eq!(
            verify(&key().verifying_key(), &bad, at(0)),
            Err(AuthError::BadSignature)
        );
        let other = SigningKey::from_bytes(&[4; 32]).verifying_key();
        assert_eq!(verify(&other, &t, at(0)), Err(AuthError::BadSignature));
    }

    #[test]
    fn algorithm_none_and_hs256_are_refused() {
        for alg in [r#"{"alg":"none"}"#, r#"{"alg":"HS256","typ":"JWT"}"#] {
            let t = sign(&key(), &claims(None));
            let parts: Vec<&str> = t.split('.').collect();
            let bad = format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(alg), parts[1], parts[2]);
            let err = verify(&key().verifying_key(), &bad, at(0)).unwrap_err();
            assert!(
                matches!(err, AuthError::Malformed(ref m) if m.contains("unsupported")),
                "{err}"
            );
        }
    }

    #[test]
    fn malformed_inputs() {
        let vk = key().verifying_key();
        for bad in ["", "a.b", "a.b.c.d", "!!.b.c", "e30.e30.AAAA"] {
            assert!(
                matches!(verify(&vk, bad, at(0)), Err(AuthError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn not_before_is_honoured() {
        let mut c = claims(None);
        c.nbf = Some(50);
        let t = sign(&key(), &c);
        assert_eq!(
            verify(&key().verifying_key(), &t, at(49)),
            Err(AuthError::NotYetValid)
        );
        assert!(verify(&key().verifying_key(), &t, at(50)).is_ok());
    }
}
