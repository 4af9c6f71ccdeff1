//! `agora keys ...`: manage a gateway's API keys and custodial accounts
//! through its admin API (the gateway owns its key book; this never opens it).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::send::print;

/// `agora keys ...`.
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make a custodial account for keys to spend from; fund it with `agora transfer`.
    Account(AdminOpts),
    /// List custodial accounts with their funds.
    Accounts(AdminOpts),
    /// Issue a key bound to an account, with budgets and rate limits.
    Create(CreateArgs),
    /// List keys (never their secrets).
    List(AdminOpts),
    /// Revoke a key by its id (`key_...`).
    Revoke(RevokeArgs),
    /// Usage per key, model and day.
    Usage(UsageArgs),
}

/// Where the gateway's admin API is and how to authenticate.
#[derive(Args, Debug)]
pub struct AdminOpts {
    /// Gateway base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub gateway: String,
    /// File holding the gateway's admin key (its `--data-dir`/admin-key).
    #[arg(long, env = "AGORA_ADMIN_KEY_FILE", default_value_os_t = agora_devnet::default_data_dir("devnet").join("gateway").join("admin-key"))]
    pub admin_key_file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `agora keys create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// A label for the key.
    #[arg(long, default_value = "")]
    pub name: String,
    /// The custodial account it spends from (default: a new one).
    #[arg(long)]
    pub account: Option<String>,
    /// Most the key may ever spend, in base units.
    #[arg(long)]
    pub budget: Option<u64>,
    /// Most per UTC day.
    #[arg(long)]
    pub daily: Option<u64>,
    /// Most per ISO week (from Monday, UTC).
    #[arg(long)]
    pub weekly: Option<u64>,
    /// Most per calendar month (UTC).
    #[arg(long)]
    pub monthly: Option<u64>,
    /// Most requests per minute.
    #[arg(long)]
    pub rpm: Option<u32>,
    /// Most tokens per minute.
    #[arg(long)]
    pub tpm: Option<u64>,
    /// Admin API flags.
    #[command(flatten)]
    pub admin: AdminOpts,
}

/// `agora keys revoke`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The key's id (`key_` and 12 hex characters).
    pub id: String,
    /// Admin API flags.
    #[command(flatten)]
    pub admin: AdminOpts,
}

/// `agora keys usage`.
#[derive(Args, Debug)]
pub struct UsageArgs {
    /// Only this key's usage.
    pub id: Option<String>,
    /// Admin API flags.
    #[command(flatten)]
    pub admin: AdminOpts,
}

struct Admin {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Admin {
    fn new(opts: &AdminOpts) -> Result<Self> {
        let key = std::fs::read_to_string(&opts.admin_key_file)
            .with_context(|| format!("reading the admin key {}", opts.admin_key_file.display()))?
            .trim()
            .to_string();
        Ok(Admin {
            base: opts.gateway.trim_end_matches('/').to_string(),
            key,
            http: reqwest::Client::new(),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let resp = request
            .send()
            .await
            .with_context(|| format!("calling {}", self.base))?;
        let status = resp.status();
        let value: Value = resp
            .json()
            .await
            .context("the gateway's answer is not JSON")?;
        if !status.is_success() {
            let message = value["error"]["message"].as_str().unwrap_or("no message");
            bail!("the gateway refused ({status}): {message}");
        }
        Ok(value)
    }
}

fn limits_text(limits: &Value) -> String {
    let parts: Vec<String> = ["total", "daily", "weekly", "monthly", "rpm", "tpm"]
        .iter()
        .filter_map(|k| limits[k].as_u64().map(|v| format!("{k}={v}")))
        .collect();
    if parts.is_empty() {
        "unlimited".into()
    } else {
        parts.join(" ")
    }
}

/// Run an `agora keys` subcommand.
pub async fn run(command: KeysCommand) -> Result<()> {
    use reqwest::Method;
    match command {
        KeysCommand::Account(o) => {
            let v = Admin::new(&o)?
                .call(Method::POST, "/admin/accounts", None)
                .await?;
            let text = format!(
                "account: {}\nfund it with `agora transfer --to {}`",
                v["account"].as_str().unwrap_or(""),
                v["account"].as_str().unwrap_or("")
            );
            print(o.json, v, text)
        }
        KeysCommand::Accounts(o) => {
            let v = Admin::new(&o)?
                .call(Method::GET, "/admin/accounts", None)
                .await?;
            let lines: Vec<String> = v["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    format!(
                        "{}  available {}  reserved {}",
                        a["account"].as_str().unwrap_or(""),
                        a["available"],
                        a["reserved"]
                    )
                })
                .collect();
            print(o.json, v.clone(), lines.join("\n"))
        }
        KeysCommand::Create(a) => {
            let admin = Admin::new(&a.admin)?;
            let account = match a.account {
                Some(acc) => acc,
                None => {
                    let v = admin.call(Method::POST, "/admin/accounts", None).await?;
                    v["account"].as_str().unwrap_or_default().to_string()
                }
            };
            let body = json!({"name": a.name, "account": account, "total": a.budget, "daily": a.daily,
                "weekly": a.weekly, "monthly": a.monthly, "rpm": a.rpm, "tpm": a.tpm});
            let v = admin.call(Method::POST, "/admin/keys", Some(body)).await?;
            let text = format!(
                "key: {}\nid: {}\naccount: {}\nlimits: {}\n(the key is shown once; keep it)",
                v["key"].as_str().unwrap_or(""),
                v["id"].as_str().unwrap_or(""),
                account,
                limits_text(&v["limits"])
            );
            print(a.admin.json, v, text)
        }
        KeysCommand::List(o) => {
            let v = Admin::new(&o)?
                .call(Method::GET, "/admin/keys", None)
                .await?;
            let lines: Vec<String> = v["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| {
                    format!(
                        "{}  {:<12} account {}  spent {}  {}{}",
                        k["id"].as_str().unwrap_or(""),
                        k["name"].as_str().unwrap_or(""),
                        k["account"].as_str().unwrap_or(""),
                        k["spend"]["total"],
                        limits_text(&k["limits"]),
                        if k["revoked"] == true {
                            "  REVOKED"
                        } else {
                            ""
                        }
                    )
                })
                .collect();
            print(o.json, v.clone(), lines.join("\n"))
        }
        KeysCommand::Revoke(r) => {
            let v = Admin::new(&r.admin)?
                .call(Method::DELETE, &format!("/admin/keys/{}", r.id), None)
                .await?;
            print(r.admin.json, v, format!("revoked {}", r.id))
        }
        KeysCommand::Usage(u) => {
            let path = match &u.id {
                Some(id) => format!("/admin/usage?key={id}"),
                None => "/admin/usage".to_string(),
            };
            let v = Admin::new(&u.admin)?.call(Method::GET, &path, None).await?;
            let mut lines = vec!["key                day         model            requests  prompt  completion  cost".to_string()];
            for r in v["data"].as_array().into_iter().flatten() {
                lines.push(format!(
                    "{:<18} {:<11} {:<16} {:>8} {:>7} {:>11} {:>5}",
                    r["key"].as_str().unwrap_or(""),
                    r["day"].as_str().unwrap_or(""),
                    r["model"].as_str().unwrap_or(""),
                    r["requests"],
                    r["prompt_tokens"],
                    r["completion_tokens"],
                    r["cost"]
                ));
            }
            print(u.admin.json, v.clone(), lines.join("\n"))
        }
    }
}
