//! The plan lock on S3: a lease in `locks/PLAN.json`.
//!
//! - Taken with `PutObject` `If-None-Match: *`. The holder record names the run, host, pid, user,
//!   since, `expires_at`, and a `token` that grows by one at each takeover.
//! - Renewed with `If-Match: ETAG` every third of the lease.
//! - Released with `DeleteObject` `If-Match: ETAG`.
//! - On 412 the lock is read: if it names this very run and process, it is ours (a retry after a
//!   lost response); if it expired, it is taken over with `If-Match` and token + 1 (journaled as
//!   `lock_taken_over`); otherwise the run is refused, naming the holder and when its lease ends.
//! - On 409 ConditionalRequestConflict, the lock is read again and the step retried.
//! - `--break-lock` takes over at once, journaled the same way.
//!
//! A holder that fails to renew (the lock was taken over, or its lease ran out unrenewed) marks the
//! lease lost; its journal commits are refused from then on.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::client::{self, Condition, Failure, block, spawn};
use super::{S3Store, conflict_pause};
use crate::journal::lock::{HeldLock, TakenOver};
use crate::journal::{LockError, LockHolder, LockPolicy, PlanLock, parse_holder};

/// The lock object of `plan`, relative to the store's prefix.
pub fn key(plan: &str) -> String {
    format!("locks/{plan}.json")
}

/// What the holder and its journal commits share about the lease.
#[derive(Debug)]
pub struct LeaseState {
    current: Mutex<Current>,
    lease: Duration,
    /// Held across each write of the lock (renewal, retarget, release), so they never race on the ETag.
    writing: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Current {
    etag: String,
    holder: LockHolder,
    /// Why the lease is no longer ours, once it is not.
    lost: Option<String>,
}

impl LeaseState {
    /// Whether commits may go on at `now`: the lease is neither lost nor run out unrenewed.
    pub fn check(&self, now: SystemTime) -> Result<(), String> {
        let current = self.current.lock().expect("not poisoned");
        if let Some(why) = &current.lost {
            return Err(format!("this process lost the lock of plan `{}`: {why}", plan_of(&current.holder)));
        }
        if current.holder.expired(now) {
            let end = current.holder.expires_at.map(crate::clock::rfc3339).unwrap_or_default();
            return Err(format!(
                "this process's lease on the lock ended at {end} without being renewed (S3 unreachable, or the \
                 process was paused); another process may have taken the run over"
            ));
        }
        Ok(())
    }

    /// Records that the lease is lost (a commit found another process's record).
    pub fn mark_lost(&self, why: &str) {
        self.current.lock().expect("not poisoned").lost.get_or_insert_with(|| why.to_string());
    }
}

fn plan_of(holder: &LockHolder) -> String {
    crate::journal::parse_run_id(&holder.run_id).map(|(p, _)| p.to_string()).unwrap_or_default()
}

/// A held lease; renewed in the background and released when dropped.
#[derive(Debug)]
struct Lease {
    store: S3Store,
    plan: String,
    holder: LockHolder,
    state: Arc<LeaseState>,
    renewal: tokio::task::JoinHandle<()>,
}

/// How long to keep trying while the lock changes hands under us.
const CONTENTION_LIMIT: Duration = Duration::from_secs(30);

/// Takes the lease of `plan` for `holder`.
pub fn acquire(
    store: &S3Store,
    plan: &str,
    holder: LockHolder,
    policy: LockPolicy,
) -> Result<(PlanLock, Arc<LeaseState>), LockError> {
    let lease = store.inner.location.lease;
    let rest = key(plan);
    let remote = |message: String| LockError::Remote { plan: plan.to_string(), location: store.url(&rest), message };
    let deadline = tokio::time::Instant::now() + CONTENTION_LIMIT;
    while tokio::time::Instant::now() < deadline {
        let now = crate::clock::wall_now();
        let fresh = LockHolder { expires_at: Some(now + lease), token: Some(1), since: now, ..holder.clone() };
        let taken = match put(store, &rest, &fresh, Condition::Absent) {
            Ok(etag) => return Ok(held(store, plan, fresh, etag, None)),
            Err(Failure::PreconditionFailed) => false,
            Err(Failure::Conflict) => true,
            Err(Failure::Other(message)) => return Err(remote(message)),
        };
        if taken {
            std::thread::sleep(conflict_pause());
        }
        let (bytes, etag) = match store.get(&rest) {
            Ok(Some(found)) => found,
            Ok(None) => continue, // released meanwhile
            Err(e) => return Err(remote(e.to_string())),
        };
        let (previous, reason) = match parse_holder(&bytes) {
            // Our own earlier attempt, whose answer was lost: the lease is ours.
            Ok(existing) if existing.same_holder(&holder) => {
                return Ok(held(store, plan, existing, etag, None));
            }
            Ok(existing) if policy.break_lock => (existing, "--break-lock"),
            Ok(existing) if existing.expired(now) => (existing, "expired"),
            Ok(existing) => {
                return Err(LockError::Held {
                    plan: plan.to_string(),
                    holder: Box::new(existing),
                    live_here: false,
                    break_asked: false,
                });
            }
            Err(reason) if policy.break_lock => {
                tracing::warn!("taking over the lock {} ({reason}), as --break-lock asks", store.url(&rest));
                let unknown = LockHolder { run_id: "unknown".into(), host: "unknown".into(), ..fresh.clone() };
                (unknown, "--break-lock")
            }
            Err(reason) => {
                return Err(LockError::Unreadable { plan: plan.to_string(), path: store.url(&rest).into(), reason });
            }
        };
        let token = previous.token.unwrap_or(0) + 1;
        let next = LockHolder { token: Some(token), ..fresh };
        match put(store, &rest, &next, Condition::Matches(etag)) {
            Ok(etag) => {
                tracing::warn!("took over the lock of plan `{plan}` from {} ({reason})", previous.describe());
                let note = TakenOver { previous, reason: reason.to_string() };
                return Ok(held(store, plan, next, etag, Some(note)));
            }
            Err(Failure::PreconditionFailed) => {} // someone else moved first: look again
            Err(Failure::Conflict) => std::thread::sleep(conflict_pause()),
            Err(Failure::Other(message)) => return Err(remote(message)),
        }
    }
    Err(remote(format!("the lock kept changing hands for {}s; try again", CONTENTION_LIMIT.as_secs())))
}

fn put(store: &S3Store, rest: &str, holder: &LockHolder, condition: Condition) -> Result<String, Failure> {
    let body = serde_json::to_vec(holder).expect("lock holders serialize");
    let client = store.inner.client.clone();
    let bucket = store.inner.location.bucket.clone();
    let key = store.key(rest);
    block(async move { client::put(&client, &bucket, &key, body, condition).await })
}

fn held(
    store: &S3Store,
    plan: &str,
    holder: LockHolder,
    etag: String,
    taken_over: Option<TakenOver>,
) -> (PlanLock, Arc<LeaseState>) {
    let lease = store.inner.location.lease;
    let current = Mutex::new(Current { etag, holder: holder.clone(), lost: None });
    let state = Arc::new(LeaseState { current, lease, writing: tokio::sync::Mutex::new(()) });
    let renewal = spawn(renew(store.clone(), plan.to_string(), state.clone()));
    let held = Lease { store: store.clone(), plan: plan.to_string(), holder, state: state.clone(), renewal };
    (PlanLock::new(Box::new(held), taken_over), state)
}

/// Renews the lease every third of its length until it is released or lost.
async fn renew(store: S3Store, plan: String, state: Arc<LeaseState>) {
    let period = state.lease / 3;
    loop {
        tokio::time::sleep(period).await;
        let result = replace(&store, &plan, &state, |holder| LockHolder {
            expires_at: Some(crate::clock::wall_now() + state.lease),
            ..holder.clone()
        })
        .await;
        match result {
            Ok(()) => {}
            Err(Failure::PreconditionFailed) => {
                tracing::error!(
                    "the lock of plan `{plan}` was taken over; this process stops at its next journal write"
                );
                state.mark_lost("another process took the lock over (the lease's renewal was refused with 412)");
                return;
            }
            // A concurrent write, or S3 unreachable: try again soon; the lease's end fences commits meanwhile.
            Err(Failure::Conflict) => {}
            Err(Failure::Other(message)) => tracing::warn!("cannot renew the lease of plan `{plan}`: {message}"),
        }
        if state.current.lock().expect("not poisoned").lost.is_some() {
            return;
        }
    }
}

/// Replaces our lock object with `change(holder)` under `If-Match` of our ETag. A 412 whose object
/// is the very one we sent (our earlier attempt landed and its answer was lost) is a success.
async fn replace(
    store: &S3Store,
    plan: &str,
    state: &LeaseState,
    change: impl FnOnce(&LockHolder) -> LockHolder,
) -> Result<(), Failure> {
    let _writing = state.writing.lock().await;
    let (etag, next) = {
        let current = state.current.lock().expect("not poisoned");
        if let Some(why) = &current.lost {
            return Err(Failure::Other(why.clone()));
        }
        (current.etag.clone(), change(&current.holder))
    };
    let body = serde_json::to_vec(&next).expect("lock holders serialize");
    let (client, bucket, key) = (&store.inner.client, &store.inner.location.bucket, store.key(&key(plan)));
    let etag = match client::put(client, bucket, &key, body.clone(), Condition::Matches(etag)).await {
        Ok(etag) => etag,
        Err(Failure::PreconditionFailed) => match client::get(client, bucket, &key).await? {
            Some((found, etag)) if found == body => etag,
            _ => return Err(Failure::PreconditionFailed),
        },
        Err(e) => return Err(e),
    };
    let mut current = state.current.lock().expect("not poisoned");
    current.etag = etag;
    current.holder = next;
    Ok(())
}

impl HeldLock for Lease {
    fn holder(&self) -> &LockHolder {
        &self.holder
    }

    fn retarget(&mut self, run_id: &str) -> Result<(), LockError> {
        let (store, plan, state, id) = (self.store.clone(), self.plan.clone(), self.state.clone(), run_id.to_string());
        let result = block(async move {
            replace(&store, &plan, &state, |holder| LockHolder { run_id: id, ..holder.clone() }).await
        });
        let remote = |message: String| LockError::Remote {
            plan: self.plan.clone(),
            location: self.store.url(&key(&self.plan)),
            message,
        };
        match result {
            Ok(()) => {
                self.holder = self.state.current.lock().expect("not poisoned").holder.clone();
                Ok(())
            }
            Err(Failure::PreconditionFailed) => Err(remote("the lock was taken over by another process".into())),
            Err(e) => Err(remote(e.to_string())),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
        let (store, state, key) = (self.store.clone(), self.state.clone(), self.store.key(&key(&self.plan)));
        let released = block(async move {
            let _writing = state.writing.lock().await;
            let (etag, lost) = {
                let current = state.current.lock().expect("not poisoned");
                (current.etag.clone(), current.lost.is_some())
            };
            if lost {
                return Ok(()); // not ours any more: the new holder's lock stays
            }
            client::delete(&store.inner.client, &store.inner.location.bucket, &key, &etag).await
        });
        if let Err(e) = released {
            tracing::warn!(
                "could not release the lock of plan `{}`: {e}; it frees itself when its lease ends",
                self.plan
            );
        }
    }
}
