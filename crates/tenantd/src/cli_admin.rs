//! `tenantd tenant …` and `tenantd hook …`: thin clients of the admin API of a running server.

use std::path::PathBuf;

use anyhow::{bail, Context};
use serde_json::Value;

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
        /// Tenant id: 1-63 of a-z 0-9 _ -, starting with a letter or digit.
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
    /// Show a tenant: size, events, last write, open or not, configured sources.
    Show {
        /// Tenant id.
        id: String,
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
}

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
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
        Ok(Client {
            http: reqwest::Client::new(),
            url: remote.url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Option<Value>> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
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
    let c = Client::new(remote)?;
    match cmd {
        TenantCmd::Create { id } => {
            c.call(reqwest::Method::PUT, &format!("/admin/tenants/{id}"), None)
                .await?;
            println!("created {id}");
        }
        TenantCmd::Delete { id } => {
            c.call(
                reqwest::Method::DELETE,
                &format!("/admin/tenants/{id}"),
                None,
            )
            .await?;
            println!("deleted {id}");
        }
        TenantCmd::List { page } => {
            let mut cursor: Option<String> = None;
            loop {
                let mut path = format!("/admin/tenants?limit={page}");
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let v = c
                    .call(reqwest::Method::GET, &path, None)
                    .await?
                    .unwrap_or_default();
                for t in v["tenants"].as_array().into_iter().flatten() {
                    println!("{}", t["id"].as_str().unwrap_or_default());
                }
                match v["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
        }
        TenantCmd::Show { id } => {
            let v = c
                .call(reqwest::Method::GET, &format!("/admin/tenants/{id}"), None)
                .await?;
            println!("{}", serde_json::to_string_pretty(&v.unwrap_or_default())?);
        }
    }
    Ok(())
}

/// Runs a `tenantd hook` command.
pub async fn run_hook(remote: &Remote, cmd: HookCmd) -> anyhow::Result<()> {
    let c = Client::new(remote)?;
    let HookCmd::Set {
        tenant,
        source,
        scheme,
        secret,
    } = cmd;
    let body = serde_json::json!({"scheme": scheme, "secret": secret});
    let v = c
        .call(
            reqwest::Method::PUT,
            &format!("/admin/tenants/{tenant}/hooks/{source}"),
            Some(body),
        )
        .await?;
    println!("{}", serde_json::to_string(&v.unwrap_or_default())?);
    Ok(())
}
