//! The runs of a state directory as the engine sees them: readable runs with their state, and
//! damaged entries with what can still be told about them (which plan, how the journal ends). So
//! damage is reported, never hidden, and it blocks a plan only when it may hide an unfinished run.

use std::time::SystemTime;

use super::state::{RunState, RunView};
use crate::journal::{Ending, Record, RunDir, StateError, StateStore, parse_run_id};
use crate::plan::Direction;

/// Every run of a state directory.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Runs whose journal reads cleanly and matches its directory, oldest first.
    pub runs: Vec<RunView>,
    /// Everything else, by run id.
    pub damaged: Vec<DamagedRun>,
}

/// A run directory whose journal cannot be trusted as a whole.
#[derive(Debug, Clone)]
pub struct DamagedRun {
    /// The run id its directory name gives.
    pub run_id: String,
    /// What is wrong, beginning with the file (and line): `PATH:LINE: ...`.
    pub problem: String,
    /// The plans it may belong to: by its directory name and by its journal.
    pub plans: Vec<String>,
    pub direction: Option<Direction>,
    pub started_at: Option<SystemTime>,
    /// How the journal ends, as far as its readable records tell.
    pub ending: Ending,
    /// When it succeeded, if its readable records say so.
    pub succeeded_at: Option<SystemTime>,
    /// The run was abandoned after the damage (`drctl abandon`): the operator has seen it.
    pub acknowledged: bool,
}

impl DamagedRun {
    /// Whether the damage may hide an unfinished run (so its plan must not start afresh).
    pub fn may_be_unfinished(&self) -> bool {
        self.ending == Ending::Open
    }

    /// Whether it may belong to plan `plan`.
    pub fn concerns(&self, plan: &str) -> bool {
        self.plans.iter().any(|p| p == plan)
    }
}

impl Catalog {
    /// Reads every run of `state`.
    pub fn load(state: &StateStore) -> Result<Catalog, StateError> {
        let mut catalog = Catalog::default();
        for dir in state.scan()? {
            match examine(state, dir) {
                Ok(view) => catalog.runs.push(view),
                Err(damaged) => catalog.damaged.push(damaged),
            }
        }
        catalog.runs.sort_by(|a, b| (a.started_at, &a.run_id).cmp(&(b.started_at, &b.run_id)));
        Ok(catalog)
    }

    /// The newest resumable run of `plan` whose journal is sound.
    pub fn unfinished(&self, plan: &str) -> Option<&RunView> {
        self.runs.iter().rev().find(|v| v.plan == plan && v.state.is_resumable())
    }

    /// A damaged run of `plan` that may be unfinished.
    pub fn blocking(&self, plan: &str) -> Option<&DamagedRun> {
        self.damaged.iter().find(|d| d.concerns(plan) && d.may_be_unfinished())
    }

    /// Damaged runs of `plan` that do not block it (they ended, or never started).
    pub fn settled_damage(&self, plan: &str) -> impl Iterator<Item = &DamagedRun> {
        self.damaged.iter().filter(move |d| d.concerns(plan) && !d.may_be_unfinished())
    }

    /// If the newest run of `plan` is a succeeded run of `direction`: its id and when it succeeded.
    pub fn latest_success(&self, plan: &str, direction: Direction) -> Option<(String, SystemTime)> {
        let sound = self.runs.iter().filter(|v| v.plan == plan).map(|v| {
            let succeeded = (v.state == RunState::Succeeded).then_some(v.finished_at.unwrap_or(v.started_at));
            (v.started_at, &v.run_id, Some(v.direction), succeeded)
        });
        let damaged = self
            .damaged
            .iter()
            .filter(|d| d.concerns(plan))
            .filter_map(|d| Some((d.started_at?, &d.run_id, d.direction, d.succeeded_at)));
        let (_, run_id, run_direction, succeeded) = sound.chain(damaged).max_by_key(|(at, id, ..)| (*at, *id))?;
        (run_direction == Some(direction)).then_some((run_id.clone(), succeeded?))
    }
}

/// A run directory read and checked: its journal must read cleanly, replay through the state
/// machine, and be the journal of the run its directory names.
pub fn examine(state: &StateStore, dir: RunDir) -> Result<RunView, DamagedRun> {
    let (run_id, journal) = match dir {
        RunDir::Journal { run_id, location } => (run_id, location),
        RunDir::Broken { run_id, location, problem } => {
            let mut damaged = damaged(&run_id, format!("{location}: {problem}"), Ending::Empty);
            damaged.problem.push_str(" (no run can be read here)");
            return Err(damaged);
        }
    };
    let scan = state.read_journal(&run_id).map_err(|e| damaged(&run_id, e.to_string(), Ending::Open))?;
    let mut found = damaged(&run_id, String::new(), scan.ending());
    found.acknowledged = scan.damage_acknowledged();
    found.succeeded_at = scan.entries.iter().rev().find_map(|e| match e.record {
        Record::RunFinished { succeeded: true, .. } => Some(e.at),
        _ => None,
    });
    if let Some(first) = scan.entries.first()
        && let Record::RunStarted { plan, direction, .. } = &first.record
    {
        add_plan(&mut found.plans, plan);
        found.direction = found.direction.or(Some(*direction));
        found.started_at = Some(first.at);
    }
    let path = journal;
    if let Some(damage) = scan.damage.first() {
        let more = match scan.damage.len() {
            1 => String::new(),
            n => format!(" (and {} more damaged lines)", n - 1),
        };
        found.problem = format!("{path}:{}: {}{more}", damage.line, damage.message);
        return Err(found);
    }
    if scan.entries.is_empty() {
        found.problem = format!("{path}: the journal is empty (a full disk or an older drctl); no step ran under it");
        return Err(found);
    }
    let view = match RunView::replay(&scan.entries) {
        Ok(view) => view,
        Err(e) => {
            let line = scan.entries.iter().position(|x| x.seq == e.seq).map_or(1, |i| scan.entry_lines[i]);
            found.problem = format!("{path}:{line}: {}", e.message);
            found.acknowledged = scan.entry_lines.last().is_some_and(|last| *last > line)
                && matches!(scan.entries.last().map(|x| &x.record), Some(Record::RunAbandoned { .. }));
            return Err(found);
        }
    };
    let named = parse_run_id(&run_id);
    if view.run_id != run_id || named != Some((view.plan.as_str(), view.direction)) {
        found.problem = format!(
            "{path}: this is the journal of run {} (plan `{}`), not of run {run_id}: it was moved or copied here. Move \
             it back to runs/{}/ if that is where it belongs, or remove the copy",
            view.run_id, view.plan, view.run_id
        );
        found.acknowledged = view.state == RunState::Abandoned;
        return Err(found);
    }
    Ok(view)
}

fn damaged(run_id: &str, problem: String, ending: Ending) -> DamagedRun {
    let named = parse_run_id(run_id);
    DamagedRun {
        run_id: run_id.to_string(),
        problem,
        plans: named.map(|(plan, _)| vec![plan.to_string()]).unwrap_or_default(),
        direction: named.map(|(_, d)| d),
        started_at: None,
        ending,
        succeeded_at: None,
        acknowledged: false,
    }
}

fn add_plan(plans: &mut Vec<String>, plan: &str) {
    if !plans.iter().any(|p| p == plan) {
        plans.push(plan.to_string());
    }
}

/// Reads run `run_id` alone, checked as [`examine`] does; `None` if there is no such run.
pub fn examine_one(state: &StateStore, run_id: &str) -> Option<Result<RunView, DamagedRun>> {
    let dir = state.find_run(run_id)?;
    Some(examine(state, dir))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::journal::{Journal, StateDir};

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    /// Writes a run of plan `p` started at `secs`, ending with `last` records; returns its id.
    fn write_run(state: &StateDir, direction: Direction, secs: u64, last: Vec<Record>) -> String {
        let run_id = StateDir::new_run_id("p", direction, at(secs));
        let started = Record::RunStarted {
            run_id: run_id.clone(),
            plan: "p".into(),
            plan_path: "/p.yaml".into(),
            plan_digest: "d".into(),
            direction,
            incident_start: None,
            host: "h".into(),
            pid: 1,
            drctl_version: "0".into(),
            steps: vec![],
            vars: vec![],
        };
        let (mut journal, _) = Journal::create(&state.journal_path(&run_id), at(secs), started).unwrap();
        journal.append(at(secs + 1), last).unwrap();
        run_id
    }

    fn finished(succeeded: bool) -> Vec<Record> {
        vec![Record::RunFinished { succeeded, message: String::new() }]
    }

    #[test]
    fn the_newest_run_decides_whether_a_direction_already_succeeded() {
        let state = StateDir::new(crate::journal::tests::tempdir());
        let over = write_run(&state, Direction::Failover, 10, finished(true));
        let catalog = Catalog::load(&state.clone().into()).unwrap();
        assert_eq!(catalog.latest_success("p", Direction::Failover), Some((over, at(11))));
        assert_eq!(catalog.latest_success("p", Direction::Failback), None);
        assert_eq!(catalog.latest_success("other", Direction::Failover), None);
        write_run(&state, Direction::Failback, 20, finished(false));
        let catalog = Catalog::load(&state.clone().into()).unwrap();
        assert_eq!(catalog.latest_success("p", Direction::Failover), None, "a later failback ends the window");
        assert!(catalog.unfinished("p").is_some(), "the failed failback is unfinished");
    }

    #[test]
    fn damage_blocks_only_a_run_that_may_be_unfinished() {
        let state = StateDir::new(crate::journal::tests::tempdir());
        let done = write_run(&state, Direction::Failover, 10, finished(true));
        let open = write_run(&state, Direction::Failback, 20, finished(false));
        for id in [&done, &open] {
            let path = state.journal_path(id);
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, format!("{text}garbage\n")).unwrap();
        }
        let catalog = Catalog::load(&state.clone().into()).unwrap();
        assert!(catalog.runs.is_empty());
        let blocking = catalog.blocking("p").expect("the failed run's damage blocks");
        assert_eq!(blocking.run_id, open);
        assert!(blocking.problem.contains("journal.jsonl:3:"), "{}", blocking.problem);
        let settled: Vec<&str> = catalog.settled_damage("p").map(|d| d.run_id.as_str()).collect();
        assert_eq!(settled, vec![done.as_str()]);
        assert!(catalog.blocking("other").is_none());
    }

    #[test]
    fn invalid_transitions_are_damage_in_words() {
        let state = StateDir::new(crate::journal::tests::tempdir());
        let mut records = finished(true);
        records.push(Record::RunFinished { succeeded: true, message: String::new() });
        let id = write_run(&state, Direction::Failover, 10, records);
        let catalog = Catalog::load(&state.clone().into()).unwrap();
        let problem = &catalog.damaged[0].problem;
        assert!(
            problem.ends_with("journal.jsonl:3: run_finished cannot happen here: the run has succeeded"),
            "{problem}"
        );
        assert_eq!(catalog.damaged[0].run_id, id);
    }
}
