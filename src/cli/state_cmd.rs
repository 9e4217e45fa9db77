//! Which state store a command uses, and `drctl state migrate`.
//!
//! `--state LOCATION` / `DRCTL_STATE` first (`s3://BUCKET/PREFIX`, or a directory), then the plan's
//! `state:`, then `--state-dir` / `DRCTL_STATE_DIR` (default `.drctl`).

use std::time::Duration;

use clap::{Args, Subcommand};

use super::Global;
use crate::exit_code;
use crate::journal::StateStore;
use crate::journal::location::{DEFAULT_LEASE, S3Location};
use crate::journal::migrate::{MigrateError, migrate};
use crate::plan::Plan;
use crate::state_s3::S3Store;

/// `drctl state ...`.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Copy every run (journals record for record) and drill report from the current state store to another:
    /// `--to s3://BUCKET/PREFIX` from a local directory, or `--to .drctl` back from S3.
    Migrate(MigrateArgs),
    /// Say where the state store is (for a plan, with `--plan`) and whether it can be read.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Where to copy to: `s3://BUCKET/PREFIX` or a directory.
    #[arg(long, value_name = "LOCATION")]
    to: String,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The plan whose `state:` to use, when --state is not given.
    #[arg(long)]
    plan: Option<String>,
}

/// The store for this command: `--state`, else the plan's `state:`, else `--state-dir`.
pub fn open(global: &Global, plan: Option<&Plan>) -> Result<StateStore, String> {
    if let Some(text) = &global.state {
        return location(text, global.state_lease).map_err(|e| format!("--state (or DRCTL_STATE): {e}"));
    }
    if let Some(settings) = plan.and_then(|p| p.state.as_ref()) {
        let location = S3Location {
            bucket: settings.bucket.clone(),
            prefix: settings.prefix.clone(),
            region: settings.region.clone(),
            profile: settings.profile.clone(),
            endpoint: settings.endpoint_url.clone(),
            lease: global.state_lease.or(settings.lease).unwrap_or(DEFAULT_LEASE),
        };
        return Ok(S3Store::open(location).into());
    }
    Ok(StateStore::local(&global.state_dir))
}

/// A store from a location as typed: `s3://...`, or a directory.
fn location(text: &str, lease: Option<Duration>) -> Result<StateStore, String> {
    if text.starts_with("s3://") {
        let mut location = S3Location::parse(text)?;
        location.lease = lease.unwrap_or(DEFAULT_LEASE);
        return Ok(S3Store::open(location).into());
    }
    if text.contains("://") {
        return Err(format!("`{text}` is neither s3://BUCKET/PREFIX nor a directory"));
    }
    if text.trim().is_empty() {
        return Err("the location is empty: write s3://BUCKET/PREFIX or a directory".into());
    }
    Ok(StateStore::local(text))
}

/// Opens the store or prints why not; `Err` holds the exit code.
pub fn open_or_exit(global: &Global, plan: Option<&Plan>) -> Result<StateStore, u8> {
    open(global, plan).map_err(|e| {
        crate::errln!("error: {e}");
        exit_code::USAGE
    })
}

/// Warns before a run whose S3 state is in the plan's primary region: the region being failed
/// away from may take the state with it.
pub fn warn_if_state_in_primary(store: &StateStore, plan: &Plan) {
    if let Some(warning) = primary_region_warning(store, plan) {
        crate::errln!("warning: {warning}");
    }
}

/// The warning [`warn_if_state_in_primary`] gives, if any.
pub fn primary_region_warning(store: &StateStore, plan: &Plan) -> Option<String> {
    let info = store.describe();
    let region = info.region.as_deref()?;
    (info.kind == "s3" && region == plan.regions.primary).then(|| {
        format!(
            "the state bucket {} is in {region}, the plan's primary region: the outage this plan answers may take \
             the journal and the lock with it. Put the bucket in {} (the region failed over to) or a third region",
            info.location, plan.regions.secondary
        )
    })
}

/// Runs a `state` subcommand.
pub fn state(global: &Global, command: StateCommand) -> u8 {
    match command {
        StateCommand::Migrate(args) => run_migrate(global, &args),
        StateCommand::Show(args) => show(global, &args),
    }
}

fn run_migrate(global: &Global, args: &MigrateArgs) -> u8 {
    let from = match open_or_exit(global, None) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let to = match location(&args.to, global.state_lease) {
        Ok(store) => store,
        Err(e) => {
            crate::errln!("error: --to: {e}");
            return exit_code::USAGE;
        }
    };
    let (source, target) = (from.describe().location, to.describe().location);
    match migrate(&from, &to) {
        Ok(done) => {
            crate::outln!(
                "copied {} runs from {source} to {target} ({} were already there)",
                done.copied.len(),
                done.already_there.len()
            );
            crate::outln!(
                "copied {} drill report files ({} were already there)",
                done.drill_files_copied.len(),
                done.drill_files_already_there.len()
            );
            for (run_id, why) in &done.skipped {
                crate::errln!("warning: run {run_id} was not copied: {why}");
            }
            for (_, why) in &done.drill_files_skipped {
                crate::errln!("warning: not copied: {why}");
            }
            for plan in &done.stale_locks {
                crate::outln!("the lock of plan `{plan}` was left behind: no run holds it any more");
            }
            let complete = done.skipped.is_empty() && done.drill_files_skipped.is_empty();
            if complete { exit_code::OK } else { exit_code::STATE_ERROR }
        }
        Err(e @ MigrateError::RunGoingOn { .. }) => {
            crate::errln!("error: {e}");
            exit_code::REFUSED
        }
        Err(e) => {
            crate::errln!("error: {e}");
            exit_code::STATE_ERROR
        }
    }
}

fn show(global: &Global, args: &ShowArgs) -> u8 {
    let plan = match &args.plan {
        Some(name) => {
            let path = crate::plan::resolve_path(name, &global.plans_dir);
            match crate::plan::load(&path, &super::checking_registry()) {
                Ok(plan) => Some(plan),
                Err(errors) => {
                    crate::errln!("{errors}");
                    return exit_code::PLAN_INVALID;
                }
            }
        }
        None => None,
    };
    let store = match open_or_exit(global, plan.as_ref()) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let info = store.describe();
    let region = info.region.as_deref().unwrap_or("-");
    crate::outln!("state: {} ({}, region {region})", info.location, info.kind);
    if let Some(warning) = plan.as_ref().and_then(|p| primary_region_warning(&store, p)) {
        crate::outln!("warning: {warning}");
    }
    match store.scan() {
        Ok(runs) => {
            crate::outln!("{} runs", runs.len());
            exit_code::OK
        }
        Err(e) => {
            crate::errln!("error: {e}");
            exit_code::STATE_ERROR
        }
    }
}
