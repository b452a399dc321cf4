//! `linktrace-admin`: what `/admin/v1/*` does, from a shell with access to Postgres: create
//! accounts, change plans, rotate and revoke keys. Prints the same JSON the HTTP admin API
//! answers; exits non-zero with the reason on stderr when it cannot.
//!
//! ```text
//! cargo run -p linktrace-api --bin linktrace-admin -- create-account --name Acme --plan scale
//! ```

use clap::{Parser, Subcommand};
use envconfig::Envconfig;
use linktrace_api::accounts;
use linktrace_api::routes::admin::{
    AccountCreated, KeyRevoked, KeyRotated, PlanChanged, ENVIRONMENT_RULE,
};
use linktrace_domain::{Environment, PlanName};
use linktrace_platform::postgres::{self, PostgresConfig};
use serde_json::{to_value, Value};
use uuid::Uuid;

/// Administer LinkTrace accounts directly in Postgres (reads DATABASE_URL).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an account; prints its id and its live and test keys (shown this once).
    CreateAccount {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_plan)]
        plan: PlanName,
    },
    /// Move an account to another plan.
    SetPlan {
        account_id: Uuid,
        #[arg(long, value_parser = parse_plan)]
        plan: PlanName,
    },
    /// Revoke the account's key of an environment and print a new one.
    RotateKey {
        account_id: Uuid,
        #[arg(long, value_parser = parse_environment)]
        environment: Environment,
    },
    /// Revoke the account's key of an environment without issuing another.
    RevokeKey {
        account_id: Uuid,
        #[arg(long, value_parser = parse_environment)]
        environment: Environment,
    },
}

fn parse_plan(raw: &str) -> Result<PlanName, String> {
    PlanName::parse(raw).map_err(|error| error.to_string())
}

fn parse_environment(raw: &str) -> Result<Environment, String> {
    Environment::parse(raw).ok_or_else(|| ENVIRONMENT_RULE.to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let pool = postgres::connect(&PostgresConfig::init_from_env()?).await?;
    let output = run(&pool, cli.command).await?;
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}

async fn run(pool: &sqlx::PgPool, command: Command) -> anyhow::Result<Value> {
    let missing = |id: Uuid| anyhow::anyhow!("no account {id}");
    Ok(match command {
        Command::CreateAccount { name, plan } => to_value(AccountCreated::from(
            &accounts::create(pool, &name, &plan).await?,
        ))?,
        Command::SetPlan { account_id, plan } => {
            if !accounts::change_plan(pool, account_id, &plan).await? {
                return Err(missing(account_id));
            }
            to_value(PlanChanged::new(account_id, &plan))?
        }
        Command::RotateKey {
            account_id,
            environment,
        } => {
            let key = accounts::rotate_key(pool, account_id, environment)
                .await?
                .ok_or_else(|| missing(account_id))?;
            to_value(KeyRotated::new(account_id, environment, &key))?
        }
        Command::RevokeKey {
            account_id,
            environment,
        } => {
            if !accounts::revoke_key(pool, account_id, environment).await? {
                return Err(missing(account_id));
            }
            to_value(KeyRevoked::new(account_id, environment))?
        }
    })
}
