//! `tenantd tenant …` and `tenantd hook …`: thin clients of the admin API of a running server.
//!
//! Ids and source names are validated with the server's own rules (`store::TenantId`,
//! `store::SourceName`) before any request, and every path segment is percent-encoded, so a
//! raw argument such as `x/../victim`, `victim#typo` or `a?b` can never address another
//! resource.

use std::path::PathBuf;

use anyhow::{bail, Context};
use reqwest::Url;
use serde_json::Value;
use store::{SourceName, TenantId};

/// Where the server is and how to authenticate.
#[derive(Debug, clap::Args)]
pub struct Remote {
    /// Base URL of the server.
    #[arg(
        long,
        env = "TENANTD_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// Admin token [default: read from DATA/admin.token].
    #[arg(
        long,
        env = "TENANTD_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// Data directory to read admin.token from when no token is given.
    #[arg(long, env = "TENANTD_DATA", default_value = crate::config::DEFAULT_DATA, global = true)]
    pub data: PathBuf,
}

/// `tenantd tenant` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TenantCmd {
    /// Create a tenant (an empty database file).
    Create {
        /// Tenant id: 1-63 of a-z 0-9 _ -, starting and ending with a letter or digit.
        id: String,
    },
    /// Delete a tenant and its file.
    Delete {
        /// Tenant id.
        id: String,
    },
    /// List tenants, one id per line (all pages).
    List {
        /// Page size used while listing.
        #[arg(long, default_value_t = 1000)]
        page: usize,
    },
    /// Show a tenant: size, events, last write, open or not, configured sources, webhook
    /// policy, schema version, last migration error.
    Show {
        /// Tenant id.
        id: String,
    },
    /// Set which webhook deliveries a tenant accepts: `open` (any source; configured sources
    /// are verified), `configured` (only configured sources), `signed` (only configured
    /// sources whose scheme checks a signature).
    Policy {
        /// Tenant id.
        id: String,
        /// open, configured or signed.
        #[arg(long, value_parser = ["open", "configured", "signed"])]
        webhooks: String,
    },
}

/// `tenantd hook` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum HookCmd {
    /// Configure how a webhook source of a tenant is verified.
    Set {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Source name (the {source} in /t/{tenant}/hooks/{source}).
        #[arg(long)]
        source: String,
        /// standard-webhooks, github, stripe, shopify or none.
        #[arg(long)]
        scheme: String,
        /// Shared secret (Standard Webhooks: whsec_...). Prefer TENANTD_HOOK_SECRET.
        #[arg(long, env = "TENANTD_HOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
    /// Remove a source's settings (the source becomes unknown: the tenant's webhook policy
    /// then decides whether its deliveries are accepted).
    Delete {
        /// Tenant id.
        #[arg(long)]
        tenant: String,
        /// Source name.
        #[arg(long)]
        source: String,
    },
}

struct Client {
    http: reqwest::Client,
    url: Url,
    token: String,
}

/// A tenant id given on the command line. Errors: not a valid id (with the rule).
fn tenant_arg(raw: &str) -> anyhow::Result<TenantId> {
    TenantId::parse(raw).with_context(|| format!("invalid_tenant_id: {raw:?} is not a tenant id"))
}

/// A source name given on the command line. Errors: not a valid name (with the rule).
fn source_arg(raw: &str) -> anyhow::Result<SourceName> {
    SourceName::parse(raw).with_context(|| format!("invalid_source: {raw:?} is not a source name"))
}

impl Client {
    fn new(remote: &Remote) -> anyhow::Result<Self> {
        let token = match &remote.token {
            Some(t) => t.clone(),
            None => {
                let path = crate::admin_token::token_path(&remote.data);
                crate::admin_token::read(&path)?.with_context(|| {
                    format!("no admin token: pass --token, set TENANTD_ADMIN_TOKEN, or run where {} exists", path.display())
                })?
            }
        };
        let url = Url::parse(&remote.url)
            .ok()
            .filter(|u| !u.cannot_be_a_base() && matches!(u.scheme(), "http" | "https"))
            .with_context(|| format!("--url {:?} is not an http(s) URL", remote.url))?;
        Ok(Client {
            http: reqwest::Client::new(),
            url,
            token,
        })
    }

    /// The URL of `segments` under the base URL, each segment percent-encoded.
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.url.clone();
        url.set_query(None);
        url.set_fragment(None);
        {
            // A base that is an http(s) URL always has path segments (checked in `new`).
            let mut path = url.path_segments_mut().expect("http URL has a path");
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    async fn call(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> anyhow::Result<Option<Value>> {
        let mut req = self
            .http
            .request(method, self.endpoint(segments))
            .query(query)
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach tenantd at {}", self.url))?;
        let status = resp.status();
        let text = resp.text().await?;
        let json: Option<Value> = serde_json::from_str(&text).ok();
        if !status.is_success() {
            let msg = json
                .as_ref()
                .and_then(|j| {
                    Some(format!(
                        "{}: {}",
                        j["error"]["code"].as_str()?,
                        j["error"]["message"].as_str()?
                    ))
                })
                .unwrap_or(text);
            bail!("{status}: {msg}");
        }
        Ok(json)
    }
}

/// Runs a `tenantd tenant` command, printing the result.
pub async fn run_tenant(remote: &Remote, cmd: TenantCmd) -> anyhow::Result<()> {
    use reqwest::Method;
    let one = |id: &str| tenant_arg(id);
    match cmd {
        TenantCmd::Create { id } => {
            let id = one(&id)?;
            let c = Client::new(remote)?;
            c.call(Method::PUT, &["admin", "tenants", id.as_str()], &[], None)
                .await?;
            println!("created {id}");
        }
        TenantCmd::Delete { id } => {
            let id = one(&id)?;
            let c = Client::new(remote)?;
            c.call(
                Method::DELETE,
                &["admin", "tenants", id.as_str()],
                &[],
                None,
            )
            .await?;
            println!("deleted {id}");
        }
        TenantCmd::List { page } => {
            let c = Client::new(remote)?;
            // The server lists in storage order; collect every page and print ids sorted.
            let mut ids = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut query = vec![("limit", page.to_string())];
                if let Some(c) = cursor.take() {
                    query.push(("cursor", c));
                }
                let v = c
                    .call(Method::GET, &["admin", "tenants"], &query, None)
                    .await?
                    .unwrap_or_default();
                for t in v["tenants"].as_array().into_iter().flatten() {
                    ids.push(t["id"].as_str().unwrap_or_default().to_owned());
                }
                match v["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            ids.sort_unstable();
            for id in ids {
                println!("{id}");
            }
        }
        TenantCmd::Show { id } => {
            let id = one(&id)?;
            let c = Client::new(remote)?;
            let v = c
                .call(Method::GET, &["admin", "tenants", id.as_str()], &[], None)
                .await?;
            println!("{}", serde_json::to_string_pretty(&v.unwrap_or_default())?);
        }
        TenantCmd::Policy { id, webhooks } => {
            let id = one(&id)?;
            let c = Client::new(remote)?;
            let body = serde_json::json!({ "webhooks": webhooks });
            let segments = ["admin", "tenants", id.as_str(), "policy"];
            let v = c.call(Method::PUT, &segments, &[], Some(body)).await?;
            println!("{}", serde_json::to_string(&v.unwrap_or_default())?);
        }
    }
    Ok(())
}

/// Runs a `tenantd hook` command.
pub async fn run_hook(remote: &Remote, cmd: HookCmd) -> anyhow::Result<()> {
    let (tenant, source) = match &cmd {
        HookCmd::Set { tenant, source, .. } | HookCmd::Delete { tenant, source } => {
            (tenant_arg(tenant)?, source_arg(source)?)
        }
    };
    let c = Client::new(remote)?;
    let segments = [
        "admin",
        "tenants",
        tenant.as_str(),
        "hooks",
        source.as_str(),
    ];
    match cmd {
        HookCmd::Set { scheme, secret, .. } => {
            let body = serde_json::json!({"scheme": scheme, "secret": secret});
            let v = c
                .call(reqwest::Method::PUT, &segments, &[], Some(body))
                .await?;
            println!("{}", serde_json::to_string(&v.unwrap_or_default())?);
        }
        HookCmd::Delete { .. } => {
            c.call(reqwest::Method::DELETE, &segments, &[], None)
                .await?;
            println!("deleted hook {source} of {tenant}");
        }
    }
    Ok(())
}

/// `POST /admin/tenants/{id}/tokens/revoke` on the server `remote` names. Errors: the
/// server's (unknown tenant, bad admin token), or it cannot be reached.
pub async fn revoke_tokens(remote: &Remote, tenant: &TenantId) -> anyhow::Result<()> {
    let c = Client::new(remote)?;
    let segments = ["admin", "tenants", tenant.as_str(), "tokens", "revoke"];
    c.call(reqwest::Method::POST, &segments, &[], None).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> Client {
        Client::new(&Remote {
            url: url.into(),
            token: Some("t".into()),
            data: PathBuf::from("."),
        })
        .unwrap()
    }

    #[test]
    fn segments_are_percent_encoded_under_the_base_path() {
        let c = client("http://h:1/base/?q=1#f");
        let url = c.endpoint(&["admin", "tenants", "a/../b", "x#y?z"]);
        assert_eq!(
            url.as_str(),
            "http://h:1/base/admin/tenants/a%2F..%2Fb/x%23y%3Fz"
        );
        assert_eq!(
            client("http://h:1").endpoint(&["admin"]).as_str(),
            "http://h:1/admin"
        );
    }

    #[test]
    fn ids_and_sources_use_the_servers_rules() {
        for bad in ["nonexistent/../victim", "victim2#typo", "a?b", "", "A"] {
            assert!(tenant_arg(bad).is_err(), "{bad}");
        }
        assert!(tenant_arg("victim").is_ok());
        assert!(source_arg("gh/../x").is_err());
        assert!(Client::new(&Remote {
            url: "localhost:8080".into(),
            token: Some("t".into()),
            data: PathBuf::from("."),
        })
        .is_err());
    }
}
