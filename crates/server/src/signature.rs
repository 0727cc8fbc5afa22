//! Webhook signature schemes: verification (pure: headers, body and the clock in, verdict out),
//! delivery ids for dedupe, and signing (for clients, tests and benchmarks).
//!
//! Supported: Standard Webhooks (`webhook-id`/`-timestamp`/`-signature`, `whsec_` secrets),
//! GitHub (`X-Hub-Signature-256`), Stripe (`Stripe-Signature: t=…,v1=…`), Shopify
//! (`X-Shopify-Hmac-Sha256`), and none. Comparisons are constant-time. Timestamped schemes reject
//! signatures older or newer than [`TOLERANCE_SECS`].

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a signed timestamp may be from now, seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// A verification scheme, as configured per tenant and source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// <https://www.standardwebhooks.com>: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    StandardWebhooks,
    /// GitHub: `X-Hub-Signature-256: sha256=<hex>` over the body.
    Github,
    /// Stripe: `Stripe-Signature: t=<ts>,v1=<hex>` over `<ts>.<body>`.
    Stripe,
    /// Shopify: `X-Shopify-Hmac-Sha256: <base64>` over the body.
    Shopify,
    /// No verification.
    None,
}

impl Scheme {
    /// Parses the API name of a scheme; the error lists the valid names.
    pub fn parse(name: &str) -> Result<Self, String> {
        Ok(match name {
            "standard-webhooks" => Scheme::StandardWebhooks,
            "github" => Scheme::Github,
            "stripe" => Scheme::Stripe,
            "shopify" => Scheme::Shopify,
            "none" => Scheme::None,
            other => {
                return Err(format!(
                    "unknown scheme {other:?}: expected one of standard-webhooks, github, \
                     stripe, shopify, none"
                ))
            }
        })
    }

    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Github => "github",
            Scheme::Stripe => "stripe",
            Scheme::Shopify => "shopify",
            Scheme::None => "none",
        }
    }

    /// Checks that `secret` suits the scheme (present unless `none`; `whsec_` + base64 for
    /// Standard Webhooks). The error says what is wrong.
    pub fn check_secret(self, secret: Option<&str>) -> Result<(), String> {
        match (self, secret) {
            (Scheme::None, None) => Ok(()),
            (Scheme::None, Some(_)) => Err("scheme \"none\" takes no secret".into()),
            (_, None) | (_, Some("")) => Err(format!("scheme {:?} needs a secret", self.as_str())),
            (Scheme::StandardWebhooks, Some(s)) => standard_key(s).map(|_| ()),
            (_, Some(_)) => Ok(()),
        }
    }
}

/// Why a signature was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    /// A header the scheme needs is absent or unreadable.
    #[error("missing or malformed header {0}")]
    MissingHeader(&'static str),
    /// The signed timestamp is outside the tolerance window.
    #[error("timestamp outside the {TOLERANCE_SECS} s tolerance")]
    StaleTimestamp,
    /// No signature matched.
    #[error("signature does not match")]
    Mismatch,
}

/// Verifies a delivery against `scheme` and `secret` at time `now_unix` (seconds).
pub fn verify(
    scheme: Scheme,
    secret: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SigError> {
    let secret = match (scheme, secret) {
        (Scheme::None, _) => return Ok(()),
        (_, Some(s)) => s,
        // A configured scheme always has a secret (checked when it is set).
        (_, None) => return Err(SigError::Mismatch),
    };
    match scheme {
        Scheme::None => Ok(()),
        Scheme::StandardWebhooks => {
            let id = header(headers, "webhook-id")?;
            let ts = header(headers, "webhook-timestamp")?;
            let sigs = header(headers, "webhook-signature")?;
            check_time(ts, now_unix, "webhook-timestamp")?;
            let key = standard_key(secret).map_err(|_| SigError::Mismatch)?;
            let want = B64.encode(mac(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]));
            let any = sigs
                .split(' ')
                .filter_map(|s| s.strip_prefix("v1,"))
                .any(|got| ct_eq(got.as_bytes(), want.as_bytes()));
            any.then_some(()).ok_or(SigError::Mismatch)
        }
        Scheme::Github => {
            let got = header(headers, "x-hub-signature-256")?;
            let got = got
                .strip_prefix("sha256=")
                .ok_or(SigError::MissingHeader("x-hub-signature-256"))?;
            let want = hex::encode(mac(secret.as_bytes(), &[body]));
            ct_eq(got.as_bytes(), want.as_bytes())
                .then_some(())
                .ok_or(SigError::Mismatch)
        }
        Scheme::Stripe => {
            let raw = header(headers, "stripe-signature")?;
            let mut ts = None;
            let mut sigs = Vec::new();
            for part in raw.split(',') {
                match part.split_once('=') {
                    Some(("t", v)) => ts = Some(v),
                    Some(("v1", v)) => sigs.push(v),
                    _ => {}
                }
            }
            let ts = ts.ok_or(SigError::MissingHeader("stripe-signature"))?;
            check_time(ts, now_unix, "stripe-signature")?;
            let want = hex::encode(mac(secret.as_bytes(), &[ts.as_bytes(), b".", body]));
            sigs.iter()
                .any(|got| ct_eq(got.as_bytes(), want.as_bytes()))
                .then_some(())
                .ok_or(SigError::Mismatch)
        }
        Scheme::Shopify => {
            let got = header(headers, "x-shopify-hmac-sha256")?;
            let want = B64.encode(mac(secret.as_bytes(), &[body]));
            ct_eq(got.as_bytes(), want.as_bytes())
                .then_some(())
                .ok_or(SigError::Mismatch)
        }
    }
}

/// The sender's delivery id, for dedupe: the scheme's own id (Stripe: the event's `id` in the
/// body), else the first of `webhook-id`, `X-GitHub-Delivery`, `X-Shopify-Event-Id` (the
/// event: the same across retries and across a shop's duplicate subscriptions),
/// `X-Shopify-Webhook-Id` (one delivery), `Idempotency-Key`. Ids longer than 256 bytes are
/// ignored.
pub fn delivery_id(scheme: Scheme, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let from_scheme = match scheme {
        Scheme::Stripe => serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("id")?.as_str().map(str::to_owned)),
        _ => None,
    };
    from_scheme
        .or_else(|| {
            [
                "webhook-id",
                "x-github-delivery",
                "x-shopify-event-id",
                "x-shopify-webhook-id",
                "idempotency-key",
            ]
            .iter()
            .find_map(|h| headers.get(*h)?.to_str().ok().map(str::to_owned))
        })
        .filter(|id| !id.is_empty() && id.len() <= 256)
}

/// Signs `body` as a sender using `scheme` would; returns the headers to send.
/// `id` is the delivery id (used by Standard Webhooks), `now_unix` the signing time.
pub fn sign(
    scheme: Scheme,
    secret: &str,
    id: &str,
    now_unix: i64,
    body: &[u8],
) -> Result<Vec<(&'static str, String)>, String> {
    let ts = now_unix.to_string();
    Ok(match scheme {
        Scheme::None => vec![],
        Scheme::StandardWebhooks => {
            let key = standard_key(secret)?;
            let sig = B64.encode(mac(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]));
            vec![
                ("webhook-id", id.to_owned()),
                ("webhook-timestamp", ts),
                ("webhook-signature", format!("v1,{sig}")),
            ]
        }
        Scheme::Github => vec![
            ("x-github-delivery", id.to_owned()),
            (
                "x-hub-signature-256",
                format!("sha256={}", hex::encode(mac(secret.as_bytes(), &[body]))),
            ),
        ],
        Scheme::Stripe => {
            let sig = hex::encode(mac(secret.as_bytes(), &[ts.as_bytes(), b".", body]));
            vec![("stripe-signature", format!("t={ts},v1={sig}"))]
        }
        Scheme::Shopify => vec![
            ("x-shopify-webhook-id", id.to_owned()),
            (
                "x-shopify-hmac-sha256",
                B64.encode(mac(secret.as_bytes(), &[body])),
            ),
        ],
    })
}

fn standard_key(secret: &str) -> Result<Vec<u8>, String> {
    let raw = secret
        .strip_prefix("whsec_")
        .ok_or("a Standard Webhooks secret starts with \"whsec_\"")?;
    B64.decode(raw)
        .map_err(|_| "a Standard Webhooks secret is whsec_ + base64".to_owned())
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, SigError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or(SigError::MissingHeader(name))
}

fn check_time(ts: &str, now_unix: i64, name: &'static str) -> Result<(), SigError> {
    let ts: i64 = ts.parse().map_err(|_| SigError::MissingHeader(name))?;
    if (now_unix - ts).abs() > TOLERANCE_SECS {
        return Err(SigError::StaleTimestamp);
    }
    Ok(())
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn github_documented_vector() {
        // From GitHub's "Validating webhook deliveries" documentation.
        let h = headers(&[(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".into(),
        )]);
        let secret = Some("It's a Secret to Everybody");
        assert_eq!(
            verify(Scheme::Github, secret, &h, b"Hello, World!", 0),
            Ok(())
        );
        assert_eq!(
            verify(Scheme::Github, secret, &h, b"Hello, World?", 0),
            Err(SigError::Mismatch)
        );
    }

    #[test]
    fn standard_webhooks_documented_vector() {
        // From the Standard Webhooks specification's example.
        let h = headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
            ("webhook-timestamp", "1614265330".into()),
            (
                "webhook-signature",
                "v1,bad v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into(),
            ),
        ]);
        let secret = Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            verify(Scheme::StandardWebhooks, secret, &h, body, 1614265330 + 10),
            Ok(())
        );
        assert_eq!(
            verify(Scheme::StandardWebhooks, secret, &h, body, 1614265330 + 301),
            Err(SigError::StaleTimestamp)
        );
    }

    #[test]
    fn every_scheme_round_trips_and_rejects_tampering() {
        let now = 1_700_000_000;
        for (scheme, secret) in [
            (Scheme::StandardWebhooks, "whsec_c2VjcmV0LWtleS0xMjM0NQ=="),
            (Scheme::Github, "gh-secret"),
            (Scheme::Stripe, "whsec_stripe"),
            (Scheme::Shopify, "shpss_secret"),
        ] {
            let body = br#"{"id":"evt_1","n":1}"#;
            let h = headers(&sign(scheme, secret, "d1", now, body).unwrap());
            assert_eq!(
                verify(scheme, Some(secret), &h, body, now),
                Ok(()),
                "{scheme:?}"
            );
            assert_eq!(
                verify(scheme, Some(secret), &h, b"{}", now),
                Err(SigError::Mismatch)
            );
            assert_eq!(
                verify(scheme, Some("other"), &h, body, now),
                Err(SigError::Mismatch)
            );
            assert!(verify(scheme, Some(secret), &HeaderMap::new(), body, now).is_err());
            assert!(delivery_id(scheme, &h, body).is_some(), "{scheme:?}");
        }
        assert_eq!(
            delivery_id(Scheme::Stripe, &HeaderMap::new(), br#"{"id":"evt_9"}"#).unwrap(),
            "evt_9"
        );
    }

    #[test]
    fn shopify_event_id_wins_over_the_webhook_id() {
        let mut h = HeaderMap::new();
        h.insert("x-shopify-webhook-id", "wh-1".parse().unwrap());
        assert_eq!(delivery_id(Scheme::Shopify, &h, b"{}").unwrap(), "wh-1");
        // Two subscriptions deliver one event under two webhook ids: the event id dedupes.
        h.insert("x-shopify-event-id", "ev-7".parse().unwrap());
        assert_eq!(delivery_id(Scheme::Shopify, &h, b"{}").unwrap(), "ev-7");
    }

    #[test]
    fn secrets_are_checked_per_scheme() {
        assert!(Scheme::None.check_secret(None).is_ok());
        assert!(Scheme::None.check_secret(Some("x")).is_err());
        assert!(Scheme::Github.check_secret(None).is_err());
        assert!(Scheme::StandardWebhooks.check_secret(Some("nope")).is_err());
        assert!(Scheme::StandardWebhooks
            .check_secret(Some("whsec_!!"))
            .is_err());
        assert!(Scheme::parse("gitlab").is_err());
    }
}
