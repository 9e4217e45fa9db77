//! The latency profile of a drill: what the drill asks for (`profile:`, `time_scale:`, `seed:` or
//! `drctl drill run --profile/--time-scale/--seed`) must be what the environment applies (its
//! `env.json`), and the report then carries the measured and the rescaled RTO.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::environment::Environment;
use super::report::model::TimingReport;
use super::rescale;

/// A profile, its scale and seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    pub profile: PathBuf,
    pub time_scale: f64,
    pub seed: Option<u64>,
}

impl Latency {
    /// The `localstack/env/up` flags that apply it.
    pub fn up_flags(&self) -> Vec<String> {
        let mut flags = vec![
            "--profile".into(),
            self.profile.display().to_string(),
            "--time-scale".into(),
            self.time_scale.to_string(),
        ];
        if let Some(seed) = self.seed {
            flags.extend(["--seed".into(), seed.to_string()]);
        }
        flags
    }
}

/// What the drill asks for: a profile name under `profiles_dir` or a path, at `time_scale`
/// (default 1), with an optional seed. `None` without a profile.
pub fn wanted(
    profile: Option<&str>,
    time_scale: Option<f64>,
    seed: Option<u64>,
    profiles_dir: &Path,
) -> Result<Option<Latency>, String> {
    let Some(profile) = profile else {
        return match (time_scale, seed) {
            (None, None) => Ok(None),
            _ => Err("`time_scale` and `seed` apply a latency profile: name one with `profile:` (or --profile)".into()),
        };
    };
    let time_scale = time_scale.unwrap_or(1.0);
    if !(time_scale > 0.0 && time_scale <= 1.0) {
        return Err(format!(
            "time scale {time_scale} is out of range: give a number above 0 and at most 1, such as 0.02"
        ));
    }
    let path = crate::plan::forecast::profile::resolve(profile, profiles_dir);
    crate::plan::forecast::profile::load(&path).map_err(|e| e.to_string())?;
    Ok(Some(Latency { profile: path, time_scale, seed }))
}

/// The latency the environment applies, checked against what the drill wants.
pub fn applied(
    wanted: Option<&Latency>,
    environment: &Environment,
    env_path: &Path,
) -> Result<Option<Latency>, String> {
    let has = environment.profile.as_ref().map(|p| Latency {
        profile: PathBuf::from(p),
        time_scale: environment.time_scale.unwrap_or(1.0),
        seed: environment.seed,
    });
    let same_file = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    match (wanted, &has) {
        (None, _) => Ok(has),
        (Some(w), Some(h))
            if same_file(&w.profile, &h.profile) && (w.time_scale - h.time_scale).abs() < 1e-9 && w.seed == h.seed =>
        {
            Ok(has)
        }
        (Some(w), _) => {
            let now = match &has {
                Some(h) => {
                    format!("applies {} at time scale {}{}", h.profile.display(), h.time_scale, seed_words(h.seed))
                }
                None => "applies no latency profile".to_string(),
            };
            Err(format!(
                "the drill asks for the latency profile {} at time scale {}{}, but the environment ({}) {now}: start it with \
                 `localstack/env/up {}` (localstack/drill.sh does so from the drill's settings)",
                w.profile.display(),
                w.time_scale,
                seed_words(w.seed),
                env_path.display(),
                w.up_flags().join(" ")
            ))
        }
    }
}

fn seed_words(seed: Option<u64>) -> String {
    seed.map_or(" (p50)".into(), |s| format!(" (sampled, seed {s})"))
}

/// The timing section of the report, from the environment's delays log.
pub fn timing(
    latency: &Latency,
    delays_log: &Path,
    fault_at: SystemTime,
    measured: Option<Duration>,
    plan_rto: Duration,
) -> Result<TimingReport, String> {
    let delays = rescale::read_log(delays_log)?;
    let end = fault_at + measured.unwrap_or_default();
    let emulated = rescale::emulated_within(&delays, fault_at, end);
    let rescaled = measured.map(|m| rescale::rescale(m, emulated, latency.time_scale));
    let secs = |d: Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;
    Ok(TimingReport {
        profile: latency.profile.display().to_string(),
        time_scale: latency.time_scale,
        seed: latency.seed,
        measured_rto_s: measured.map(secs),
        emulated_s: secs(emulated),
        rescaled_rto_s: rescaled.map(secs),
        plan_rto_s: plan_rto.as_secs_f64(),
        rescaled_met: rescaled.map(|r| r <= plan_rto),
        method: format!(
            "the emulated cloud operations ran at time scale {}: the {:.3} s of the measured RTO during which a delay the \
             environment logged was running (the union of their intervals, clipped from the fault to the recovery) are \
             stretched by 1/{}; the rest (drctl, the real PostgreSQL, the client's DNS cache and write interval) stays \
             as measured",
            latency.time_scale,
            emulated.as_secs_f64(),
            latency.time_scale
        ),
        delays: rescale::overlapping(&delays, fault_at, end),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("drills/profiles")
    }

    fn environment(profile: Option<&str>, time_scale: Option<f64>) -> Environment {
        let json = serde_json::json!({
            "name": "local", "variables": {}, "profile": profile, "time_scale": time_scale,
            "endpoints": {"aws": "http://127.0.0.1:1", "kubernetes": {}, "postgres": {}, "health": "http://127.0.0.1:2"},
            "actions": {"inject": {}, "repair": [], "restore": [], "checks": {}}
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_drill_names_a_profile_by_name_and_its_scale_must_be_sane() {
        let l = wanted(Some("aws-typical"), Some(0.02), None, &profiles()).unwrap().unwrap();
        assert_eq!(l.profile, profiles().join("aws-typical.yaml"));
        assert_eq!(l.up_flags()[2..], ["--time-scale".to_string(), "0.02".into()]);
        assert!(wanted(Some("aws-typical"), Some(0.0), None, &profiles()).unwrap_err().contains("out of range"));
        assert!(wanted(None, Some(0.02), None, &profiles()).unwrap_err().contains("name one with `profile:`"));
        assert!(wanted(Some("nope"), None, None, &profiles()).unwrap_err().contains("nope.yaml"));
        assert_eq!(wanted(None, None, None, &profiles()).unwrap(), None);
    }

    #[test]
    fn the_environment_must_apply_what_the_drill_asks_for() {
        let want = wanted(Some("aws-typical"), Some(0.02), None, &profiles()).unwrap();
        let path = profiles().join("aws-typical.yaml");
        let same = environment(Some(path.to_str().unwrap()), Some(0.02));
        assert!(applied(want.as_ref(), &same, Path::new("env.json")).unwrap().is_some());
        let e = applied(want.as_ref(), &environment(None, None), Path::new("env.json")).unwrap_err();
        assert!(e.contains("applies no latency profile") && e.contains("--time-scale 0.02"), "{e}");
        let e = applied(want.as_ref(), &environment(Some(path.to_str().unwrap()), Some(0.5)), Path::new("env.json"));
        assert!(e.unwrap_err().contains("at time scale 0.5"));
        // A drill that asks for nothing still reports what the environment applied.
        assert!(applied(None, &same, Path::new("env.json")).unwrap().is_some());
    }
}
