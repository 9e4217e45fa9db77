//! `approval`: a human gate. The run stops until an [`Approver`] (a terminal prompt, or
//! [`AutoApprove`] for `--yes`) lets it continue.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::step::{BuildContext, Observation, Outputs, Step, StepContext, StepError, TypedStep};

/// What an operator is asked to approve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub run_id: String,
    pub step_id: String,
    /// The question, from the plan or a default naming the step.
    pub message: String,
    /// The word the operator must type, when the plan sets one; otherwise the approver decides
    /// what counts as a yes.
    pub confirm: Option<String>,
}

/// Decides approval steps.
#[async_trait]
pub trait Approver: Send + Sync {
    /// `Ok` when approved; a fatal [`StepError`] saying why not ("the operator typed `no`").
    async fn approve(&self, request: &ApprovalRequest) -> Result<(), StepError>;
}

/// Approves everything: `--yes`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AutoApprove;

#[async_trait]
impl Approver for AutoApprove {
    async fn approve(&self, request: &ApprovalRequest) -> Result<(), StepError> {
        tracing::info!(step = %request.step_id, "approved non-interactively (--yes): {}", request.message);
        Ok(())
    }
}

/// Refuses everything: there is no terminal to ask on and `--yes` was not given.
#[derive(Debug, Clone, Copy, Default)]
pub struct RefuseWithoutTerminal;

#[async_trait]
impl Approver for RefuseWithoutTerminal {
    async fn approve(&self, _request: &ApprovalRequest) -> Result<(), StepError> {
        Err(StepError::fatal("no terminal to ask on; pass --yes to approve non-interactively"))
    }
}

/// The `approval` step type.
pub struct Approval {
    pub approver: Arc<dyn Approver>,
}

/// `with:` of an `approval` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalParams {
    /// The question put to the operator ("DNS now points at us-west-2. Promote the replica?").
    #[serde(default)]
    pub message: Option<String>,
    /// A word the operator must type to approve, such as the region being failed over to.
    #[serde(default)]
    pub confirm: Option<String>,
}

impl TypedStep for Approval {
    const DOCS: crate::step::StepDocs = crate::step::StepDocs {
        description: "A human gate: the run stops at this step until an operator approves. On a terminal drctl shows \
            `message` and asks the operator to type the word the prompt names; `--yes` approves without asking, for \
            automation. Without a terminal and without `--yes` the step refuses.",
        example: r#"
message: "DNS will point at {{ plan.regions.secondary }}. Promote the DR database?"
"#,
        outputs: &[("approved_at", "When the operator approved, RFC 3339 in UTC.")],
        failure: "A refusal, or no terminal to ask on without `--yes`, fails the step for good (it is not retried), \
            and with it the run.",
    };
    type Params = ApprovalParams;
    const NAME: &'static str = "approval";
    const SUMMARY: &'static str = "Stops until an operator approves (or --yes was given); refusal fails the run.";
    const OUTPUTS: &'static [&'static str] = &["approved_at"];

    fn build(&self, params: ApprovalParams, _context: &BuildContext) -> Box<dyn Step> {
        Box::new(ApprovalStep {
            approver: self.approver.clone(),
            message: params.message,
            confirm: params.confirm,
            approved_at: Mutex::new(None),
        })
    }
}

struct ApprovalStep {
    approver: Arc<dyn Approver>,
    message: Option<String>,
    confirm: Option<String>,
    approved_at: Mutex<Option<String>>,
}

#[async_trait]
impl Step for ApprovalStep {
    fn describe(&self) -> String {
        let mut text = "ask an operator to approve".to_string();
        if let Some(message) = &self.message {
            text.push_str(&format!(": {message}"));
        }
        if let Some(word) = &self.confirm {
            text.push_str(&format!(" (type `{word}`)"));
        }
        text
    }

    /// An approval is never already given: a resumed run asks again.
    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        Ok(Observation::NotDone)
    }

    async fn act(&self, ctx: &StepContext) -> Result<(), StepError> {
        let request = ApprovalRequest {
            run_id: ctx.run_id.clone(),
            step_id: ctx.step_id.clone(),
            message: self.message.clone().unwrap_or_else(|| format!("Continue past step `{}`?", ctx.step_id)),
            confirm: self.confirm.clone(),
        };
        self.approver.approve(&request).await?;
        *self.approved_at.lock().unwrap() = Some(crate::clock::rfc3339(ctx.clock.now()));
        Ok(())
    }

    async fn verify(&self, ctx: &StepContext) -> Result<Outputs, StepError> {
        let at = self.approved_at.lock().unwrap().clone().unwrap_or_else(|| crate::clock::rfc3339(ctx.clock.now()));
        Ok(Outputs::from([("approved_at".to_string(), at)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::test_server::{build, ctx};

    /// Records requests and answers with a fixed verdict.
    struct Recording {
        seen: Mutex<Vec<ApprovalRequest>>,
        verdict: Result<(), StepError>,
    }

    #[async_trait]
    impl Approver for Recording {
        async fn approve(&self, request: &ApprovalRequest) -> Result<(), StepError> {
            self.seen.lock().unwrap().push(request.clone());
            self.verdict.clone()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_approver_sees_the_request_and_approval_is_timestamped() {
        let approver = Arc::new(Recording { seen: Mutex::default(), verdict: Ok(()) });
        let step = build(&Approval { approver: approver.clone() }, "message: Promote the replica?\nconfirm: us-west-2");
        assert_eq!(step.describe(), "ask an operator to approve: Promote the replica? (type `us-west-2`)");
        let ctx = ctx();
        assert_eq!(step.observe(&ctx).await.unwrap(), Observation::NotDone);
        step.act(&ctx).await.unwrap();
        let outputs = step.verify(&ctx).await.unwrap();
        assert_eq!(outputs["approved_at"], "2025-01-01T12:00:00.000Z");
        let seen = approver.seen.lock().unwrap();
        assert_eq!(
            seen[0],
            ApprovalRequest {
                run_id: "run-1".into(),
                step_id: "step".into(),
                message: "Promote the replica?".into(),
                confirm: Some("us-west-2".into()),
            }
        );
    }

    #[tokio::test]
    async fn refusal_is_fatal_and_the_default_message_names_the_step() {
        let approver =
            Arc::new(Recording { seen: Mutex::default(), verdict: Err(StepError::fatal("the operator typed `no`")) });
        let step = build(&Approval { approver: approver.clone() }, "{}");
        let e = step.act(&ctx()).await.unwrap_err();
        assert_eq!(e, StepError::fatal("the operator typed `no`"));
        assert_eq!(approver.seen.lock().unwrap()[0].message, "Continue past step `step`?");
    }

    #[tokio::test]
    async fn builtin_approvers() {
        let step = build(&Approval { approver: Arc::new(AutoApprove) }, "{}");
        step.act(&ctx()).await.unwrap();
        let step = build(&Approval { approver: Arc::new(RefuseWithoutTerminal) }, "{}");
        let e = step.act(&ctx()).await.unwrap_err();
        assert!(!e.is_retryable());
        assert!(e.message.contains("pass --yes"));
    }
}
