//! `approval`: a human gate. The run stops until an [`Approver`] (a terminal prompt, or
//! [`AutoApprove`] for `--yes`) lets it continue. The operator types the plan's name (or the
//! step's `confirm` word); how the approval was given is journaled as the step's outputs.
//!
//! An approval is never retried (a refusal is final) and waits 30 minutes unless the plan's step
//! sets a `timeout`: see [`Approval`]'s [`TypedStep::POLICY`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::plan::OnFailure;
use crate::step::{
    BuildContext, Observation, OutputSpec, Outputs, Receipt, Step, StepContext, StepError, TypePolicy, TypedStep,
};

/// How long an approval waits when its step sets no `timeout`: people need longer than machines.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What an operator is asked to approve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub run_id: String,
    pub step_id: String,
    /// The question, from the plan or a default naming the step.
    pub message: String,
    /// The word the operator must type: the step's `confirm`, else the plan's name.
    pub word: String,
}

/// How an approval was given, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given {
    pub via: Via,
    /// The OS user of the drctl process.
    pub user: String,
    /// The terminal the answer was typed on (`/dev/pts/3`), if any.
    pub tty: Option<String>,
}

/// The way an approval was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The operator typed the word at a terminal.
    Typed,
    /// `--yes` on the command line.
    YesFlag,
}

impl Given {
    /// Given by this process's user on its standard input's terminal.
    pub fn here(via: Via) -> Given {
        Given { via, user: os_user(), tty: stdin_tty() }
    }
}

/// Decides approval steps.
#[async_trait]
pub trait Approver: Send + Sync {
    /// How the approval was given; a fatal [`StepError`] saying why not ("the operator typed `no`").
    async fn approve(&self, request: &ApprovalRequest) -> Result<Given, StepError>;
}

/// Approves everything: `--yes`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AutoApprove;

#[async_trait]
impl Approver for AutoApprove {
    async fn approve(&self, request: &ApprovalRequest) -> Result<Given, StepError> {
        tracing::info!(step = %request.step_id, "approved non-interactively (--yes): {}", request.message);
        Ok(Given::here(Via::YesFlag))
    }
}

/// Refuses everything: there is no terminal to ask on and `--yes` was not given.
#[derive(Debug, Clone, Copy, Default)]
pub struct RefuseWithoutTerminal;

#[async_trait]
impl Approver for RefuseWithoutTerminal {
    async fn approve(&self, _request: &ApprovalRequest) -> Result<Given, StepError> {
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
    /// The word the operator must type to approve; defaults to the plan's `name`.
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
        failure: "A refusal, or no terminal to ask on without `--yes`, fails the step for good (it is not retried), \
            and with it the run.",
    };
    type Params = ApprovalParams;
    const NAME: &'static str = "approval";
    const SUMMARY: &'static str = "Stops until an operator types the plan's name (or --yes was given); three wrong \
                                   answers or the timeout (default 30m) fail the run. Never retried.";
    const OUTPUTS: &'static [OutputSpec] = &[
        OutputSpec::string("approved_at", "When the operator approved, RFC 3339 in UTC."),
        OutputSpec::string(
            "approved_via",
            "How: `typed` (the word typed at the prompt) or `--yes` (on the command line).",
        ),
        OutputSpec::string("approved_by", "The OS user who approved (from the user database, not `$USER`)."),
        OutputSpec::string(
            "approved_tty",
            "The terminal the word was typed on; absent with `--yes` or without a terminal.",
        )
        .optional(),
    ];
    const POLICY: TypePolicy = TypePolicy {
        check: false,
        default_timeout: Some(DEFAULT_TIMEOUT),
        retries: false,
        on_failure: OnFailure::Stop,
    };

    fn build(&self, params: ApprovalParams, context: &BuildContext) -> Box<dyn Step> {
        Box::new(ApprovalStep {
            approver: self.approver.clone(),
            message: params.message,
            word: params.confirm.unwrap_or_else(|| context.plan.name.clone()),
        })
    }
}

struct ApprovalStep {
    approver: Arc<dyn Approver>,
    message: Option<String>,
    word: String,
}

#[async_trait]
impl Step for ApprovalStep {
    fn describe(&self) -> String {
        let mut text = "ask an operator to approve".to_string();
        if let Some(message) = &self.message {
            text.push_str(&format!(": {message}"));
        }
        text.push_str(&format!(" (type `{}`)", self.word));
        text
    }

    /// An approval is never found already given: a resumed run asks again, unless this run's
    /// approval reached the journal (its receipt), which the engine then hands to `verify`.
    async fn observe(&self, _ctx: &StepContext) -> Result<Observation, StepError> {
        Ok(Observation::NotDone)
    }

    async fn act(&self, ctx: &StepContext) -> Result<Receipt, StepError> {
        let request = ApprovalRequest {
            run_id: ctx.run_id.clone(),
            step_id: ctx.step_id.clone(),
            message: self.message.clone().unwrap_or_else(|| format!("Continue past step `{}`?", ctx.step_id)),
            word: self.word.clone(),
        };
        let given = self.approver.approve(&request).await?;
        let mut outputs = Outputs::from([
            ("approved_at".to_string(), crate::clock::rfc3339(ctx.clock.now())),
            (
                "approved_via".to_string(),
                match given.via {
                    Via::Typed => "typed",
                    Via::YesFlag => "--yes",
                }
                .to_string(),
            ),
            ("approved_by".to_string(), given.user),
        ]);
        outputs.extend(given.tty.map(|tty| ("approved_tty".to_string(), tty)));
        // How it was given is the receipt: a run resumed after this point does not ask again.
        Ok(Receipt::of(&outputs))
    }

    async fn verify(&self, _ctx: &StepContext, receipt: &Receipt) -> Result<Outputs, StepError> {
        receipt.read()
    }
}

/// How an approval step's outputs say it was given, for summaries and reports ("typed by alice
/// on /dev/pts/3", "--yes, by ci"); `None` for the outputs of other steps.
pub fn approval_note(outputs: &Outputs) -> Option<String> {
    let via = outputs.get("approved_via")?;
    let user = outputs.get("approved_by").map_or("an unknown user", String::as_str);
    let tty = outputs.get("approved_tty").filter(|t| t.as_str() != "none");
    Some(match (via.as_str(), tty) {
        ("typed", Some(tty)) => format!("typed by {user} on {tty}"),
        ("typed", None) => format!("typed by {user}"),
        (via, _) => format!("{via}, by {user}"),
    })
}

/// The name of the OS user this process runs as (from the user database, not `$USER`).
pub fn os_user() -> String {
    let uid = unsafe { libc::geteuid() };
    let mut buf = vec![0u8; 4096];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives the use of `pwd`'s strings.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut found) };
    if rc == 0 && !found.is_null() {
        // SAFETY: getpwuid_r succeeded, so pw_name is a NUL-terminated string inside `buf`.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        return name.to_string_lossy().into_owned();
    }
    format!("uid {uid}")
}

/// The terminal device of standard input (`/dev/pts/3`), if it is one.
pub fn stdin_tty() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for its length; ttyname_r writes a NUL-terminated string into it.
    let rc = unsafe { libc::ttyname_r(0, buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let name = std::ffi::CStr::from_bytes_until_nul(&buf).ok()?;
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::steps::test_support::{build, ctx};

    /// Records requests and answers with a fixed verdict.
    struct Recording {
        seen: Mutex<Vec<ApprovalRequest>>,
        verdict: Result<Given, StepError>,
    }

    #[async_trait]
    impl Approver for Recording {
        async fn approve(&self, request: &ApprovalRequest) -> Result<Given, StepError> {
            self.seen.lock().unwrap().push(request.clone());
            self.verdict.clone()
        }
    }

    fn typed() -> Given {
        Given { via: Via::Typed, user: "alice".into(), tty: Some("/dev/pts/3".into()) }
    }

    #[tokio::test(start_paused = true)]
    async fn the_approver_sees_the_request_and_how_it_was_given_is_output() {
        let approver = Arc::new(Recording { seen: Mutex::default(), verdict: Ok(typed()) });
        let step = build(&Approval { approver: approver.clone() }, "message: Promote the replica?\nconfirm: us-west-2");
        assert_eq!(step.describe(), "ask an operator to approve: Promote the replica? (type `us-west-2`)");
        let ctx = ctx();
        assert_eq!(step.observe(&ctx).await.unwrap(), Observation::NotDone);
        let receipt = step.act(&ctx).await.unwrap();
        let outputs = step.verify(&ctx, &receipt).await.unwrap();
        assert_eq!(outputs["approved_at"], "2025-01-01T12:00:00.000Z");
        assert_eq!(outputs["approved_via"], "typed");
        assert_eq!(outputs["approved_by"], "alice");
        assert_eq!(outputs["approved_tty"], "/dev/pts/3");
        assert_eq!(approval_note(&outputs).unwrap(), "typed by alice on /dev/pts/3");
        let seen = approver.seen.lock().unwrap();
        assert_eq!(
            seen[0],
            ApprovalRequest {
                run_id: "run-1".into(),
                step_id: "step".into(),
                message: "Promote the replica?".into(),
                word: "us-west-2".into(),
            }
        );
    }

    #[tokio::test]
    async fn the_word_is_the_plans_name_unless_the_step_says_otherwise() {
        let approver = Arc::new(Recording { seen: Mutex::default(), verdict: Ok(typed()) });
        let step = build(&Approval { approver: approver.clone() }, "{}");
        step.act(&ctx()).await.unwrap();
        // test_support::build uses Plan::minimal("test", ...).
        assert_eq!(approver.seen.lock().unwrap()[0].word, "test");
        assert_eq!(step.describe(), "ask an operator to approve (type `test`)");
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
        let receipt = step.act(&ctx()).await.unwrap();
        let outputs = step.verify(&ctx(), &receipt).await.unwrap();
        assert_eq!(outputs["approved_via"], "--yes");
        assert_eq!(outputs["approved_by"], os_user());
        assert_eq!(approval_note(&outputs).unwrap(), format!("--yes, by {}", os_user()));
        let step = build(&Approval { approver: Arc::new(RefuseWithoutTerminal) }, "{}");
        let e = step.act(&ctx()).await.unwrap_err();
        assert!(!e.is_retryable());
        assert!(e.message.contains("pass --yes"));
    }

    #[test]
    fn the_os_user_comes_from_the_user_database() {
        let user = os_user();
        assert!(!user.is_empty() && !user.starts_with("uid "), "{user}");
        assert_eq!(approval_note(&Outputs::new()), None);
    }
}
