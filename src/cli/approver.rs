//! Approval on a terminal: the operator types the confirmation word (the plan's name by default).

use async_trait::async_trait;
use indicatif::MultiProgress;

use crate::step::StepError;
use crate::steps::{ApprovalRequest, Approver};

/// Asks on the terminal, pausing the progress display while it does.
pub struct TerminalApprover {
    plan_name: String,
    bars: Option<MultiProgress>,
}

impl TerminalApprover {
    /// An approver whose default confirmation word is `plan_name`.
    pub fn new(plan_name: &str, bars: Option<MultiProgress>) -> Self {
        TerminalApprover { plan_name: plan_name.to_string(), bars }
    }
}

#[async_trait]
impl Approver for TerminalApprover {
    async fn approve(&self, request: &ApprovalRequest) -> Result<(), StepError> {
        let word = request.confirm.clone().unwrap_or_else(|| self.plan_name.clone());
        let prompt = format!("\n{}\nType `{word}` to proceed (anything else stops the run): ", request.message);
        let bars = self.bars.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let ask = || {
                crate::report::console::Stream::Err.write_fmt(format_args!("{prompt}"));
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).map(|_| line)
            };
            match bars {
                Some(bars) => bars.suspend(ask),
                None => ask(),
            }
        })
        .await
        .map_err(|e| StepError::fatal(format!("the prompt failed: {e}")))?
        .map_err(|e| StepError::fatal(format!("cannot read the answer from the terminal: {e}")))?;
        let answer = answer.trim();
        if answer == word {
            Ok(())
        } else {
            Err(StepError::fatal(format!("not approved: the operator typed `{answer}`, not `{word}`")))
        }
    }
}
