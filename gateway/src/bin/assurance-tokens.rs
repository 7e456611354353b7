//! `assurance-tokens`: mints API tokens into a tokens file (only their SHA-256 is stored; the
//! token is printed once), or prints the hash of an existing token.
//!
//! ```sh
//! assurance-tokens add --tokens-file data/tokens.toml --principal scanner@example.com \
//!     --role service_manager --service exchange-online --expires 2027-06-30T00:00:00Z
//! assurance-tokens hash < token.txt
//! ```

use std::{io::Read, path::PathBuf, process::ExitCode};

use assurance_runtime::auth::{
    Roles,
    tokens::{NewToken, append, sha256_hex},
};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "assurance-tokens",
    version,
    about = "Mint Assurance API tokens"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mints a token, appends its hash to the tokens file and prints the token (once).
    Add {
        #[arg(long)]
        tokens_file: PathBuf,
        /// Who the token stands for, as the audit trail will record it.
        #[arg(long)]
        principal: String,
        /// A role (repeat for several): viewer, reporter, risk_owner, service_manager,
        /// trust_team, erm_executive, responder, security_lead, tracker, system, admin.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Limits changes to this service's records (repeat for several).
        #[arg(long = "service")]
        services: Vec<String>,
        /// RFC 3339 time after which the token is refused.
        #[arg(long)]
        expires: Option<String>,
        /// What the token is for.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Prints the SHA-256 of the token read from standard input (for writing the file by hand).
    Hash,
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("assurance-tokens: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<String, String> {
    match command {
        Command::Add {
            tokens_file,
            principal,
            roles,
            services,
            expires,
            note,
        } => {
            let roles = Roles::parse(roles.iter().map(String::as_str))?;
            append(
                &tokens_file,
                &NewToken {
                    principal: &principal,
                    roles,
                    services: (!services.is_empty()).then_some(services.as_slice()),
                    expires: expires.as_deref(),
                    note: &note,
                },
            )
        }
        Command::Hash => {
            let mut token = String::new();
            std::io::stdin()
                .read_to_string(&mut token)
                .map_err(|e| e.to_string())?;
            Ok(sha256_hex(token.trim()))
        }
    }
}
