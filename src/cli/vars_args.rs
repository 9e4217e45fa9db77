//! `--var NAME=VALUE` and `--vars FILE`: a run's overrides of the plan's variables.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::exit_code;
use crate::plan::vars::Overrides;
use crate::plan::{self, Plan};
use crate::step::Registry;

/// Overrides of the plan's variables.
#[derive(Debug, Clone, Default, Args)]
pub struct VarArgs {
    /// Override a plan variable for this run (repeatable), such as --var replica_id=portfolio-dr.
    /// Applied after --vars. Never a secret: the values are journaled and shown.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub var: Vec<String>,
    /// Override plan variables from a YAML file of `NAME: VALUE` lines.
    #[arg(long = "vars", value_name = "FILE")]
    pub vars_file: Option<PathBuf>,
    /// A drill environment's env.json whose `vars` override the plan's (the drill runner passes it;
    /// --vars and --var still win).
    #[arg(long, value_name = "ENV_JSON", hide = true)]
    pub environment_vars: Option<PathBuf>,
}

impl VarArgs {
    /// The overrides, lowest precedence first: the drill environment, the file, the command line.
    pub fn overrides(&self) -> Result<Overrides, String> {
        let mut overrides = Overrides::default();
        if let Some(path) = &self.environment_vars {
            let environment = crate::drill::environment::Environment::load(path)?;
            overrides.environment(path, &environment.vars)?;
        }
        if let Some(path) = &self.vars_file {
            overrides.file(path)?;
        }
        overrides.command_line(&self.var)?;
        Ok(overrides)
    }

    /// Whether the operator gave any override.
    pub fn given(&self) -> bool {
        !self.var.is_empty() || self.vars_file.is_some() || self.environment_vars.is_some()
    }

    /// Loads the plan at `path` with these overrides. On failure it prints why and gives the exit
    /// code (invalid plan), so every command that takes `--var`/`--vars` reports alike.
    pub fn load_plan(&self, path: &Path, registry: &Registry) -> Result<Plan, u8> {
        let overrides = self.overrides().map_err(|e| {
            crate::errln!("error: {e}");
            exit_code::PLAN_INVALID
        })?;
        plan::load_with(path, registry, &overrides).map_err(|errors| {
            crate::errln!("{errors}");
            exit_code::PLAN_INVALID
        })
    }
}
