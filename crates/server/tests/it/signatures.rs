//! Every signature scheme through the HTTP stack: valid, tampered body, wrong secret, stale
//! timestamp, missing header; and dedupe on each scheme's delivery id.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use server::signature::{sign, Scheme};

use crate::util::{error_code, start, TestServer};

const BODY: &str = r#"{"id":"evt_123","type":"ping"}"#;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn send(
    srv: &TestServer,
    source: &str,
    headers: &[(&'static str, String)],
    body: &str,
) -> reqwest::Response {
    let mut req = srv
        .http
        .post(format!("{}/t/shop/hooks/{source}", srv.url))
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.unwrap()
}

async fn configure(srv: &TestServer, source: &str, scheme: &str, secret: Option<&str>) {
    let r = srv
        .http
        .put(format!("{}/admin/tenants/shop/hooks/{source}", srv.url))
        .bearer_auth(crate::util::TOKEN)
        .json(&json!({"scheme": scheme, "secret": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "configure {source}");
    let v: Value = r.json().await.unwrap();
    assert!(
        v.get("secret").is_none(),
        "secret must never be returned: {v}"
    );
}

#[tokio::test]
async fn every_scheme_accepts_valid_and_rejects_forgeries() {
    let srv = start().await;
    srv.create_tenant("shop").await;
    let cases = [
        (
            Scheme::StandardWebhooks,
            "whsec_dGVzdC1zZWNyZXQta2V5LTEyMzQ1Njc4OTA=",
            true,
        ),
        (Scheme::Github, "gh-secret", false),
        (Scheme::Stripe, "whsec_stripe_secret", true),
        (Scheme::Shopify, "shpss_secret", false),
    ];
    let mut stored = 0;
    for (scheme, secret, timestamped) in cases {
        let source = scheme.as_str();
        configure(&srv, source, source, Some(secret)).await;
        let delivery = format!("d-{source}");

        let good = sign(scheme, secret, &delivery, now(), BODY.as_bytes()).unwrap();
        let r = send(&srv, source, &good, BODY).await;
        assert_eq!(r.status(), 202, "{source}: valid");
        stored += 1;

        let r = send(&srv, source, &good, r#"{"id":"evt_123","type":"pong"}"#).await;
        assert_eq!(
            error_code(r).await,
            (401, "invalid_signature".into()),
            "{source}: tampered"
        );

        let forged = sign(scheme, "not-the-secret", &delivery, now(), BODY.as_bytes());
        let forged = forged.unwrap_or_else(|_| {
            sign(scheme, "whsec_AAAA", &delivery, now(), BODY.as_bytes()).unwrap()
        });
        let r = send(&srv, source, &forged, BODY).await;
        assert_eq!(
            error_code(r).await,
            (401, "invalid_signature".into()),
            "{source}: wrong secret"
        );

        if timestamped {
            let stale = sign(scheme, secret, &delivery, now() - 600, BODY.as_bytes()).unwrap();
            let r = send(&srv, source, &stale, BODY).await;
            assert_eq!(
                error_code(r).await,
                (401, "invalid_signature".into()),
                "{source}: stale"
            );
        }

        let r = send(&srv, source, &[], BODY).await;
        assert_eq!(
            error_code(r).await,
            (401, "invalid_signature".into()),
            "{source}: no header"
        );

        // Redelivery of the valid one: 200, same id, nothing stored.
        let r = send(&srv, source, &good, BODY).await;
        assert_eq!(r.status(), 200, "{source}: redelivery");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["duplicate"], true);
    }
    let r = srv.admin(reqwest::Method::GET, "/admin/tenants/shop").await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["events"], stored,
        "only valid, first deliveries are stored"
    );
    assert_eq!(v["hooks"].as_array().unwrap().len(), 4);
    srv.stop().await;
}

#[tokio::test]
async fn idempotency_key_dedupes_unsigned_sources() {
    let srv = start().await;
    srv.create_tenant("shop").await;
    let key = [("idempotency-key", "order-42".to_owned())];
    let first = send(&srv, "plain", &key, "a").await;
    assert_eq!(first.status(), 202);
    let id = first.json::<Value>().await.unwrap()["id"].clone();
    let again = send(&srv, "plain", &key, "b").await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        json!({"id": id, "duplicate": true})
    );
    assert_eq!(send(&srv, "plain", &[], "c").await.status(), 202);
    srv.stop().await;
}

#[tokio::test]
async fn bad_hook_configurations_are_refused() {
    let srv = start().await;
    srv.create_tenant("shop").await;
    for body in [
        json!({"scheme": "gitlab", "secret": "x"}),
        json!({"scheme": "github"}),
        json!({"scheme": "standard-webhooks", "secret": "no-prefix"}),
        json!({"scheme": "none", "secret": "x"}),
        json!({"scheme": "github", "secret": "x", "extra": 1}),
    ] {
        let r = srv
            .http
            .put(format!("{}/admin/tenants/shop/hooks/s", srv.url))
            .bearer_auth(crate::util::TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(r).await.0, 400, "{body}");
    }
    srv.stop().await;
}
