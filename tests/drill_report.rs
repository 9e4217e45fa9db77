//! The drill report's published forms: its JSON matches the committed JSON Schema (and mistakes do
//! not), and the HTML page draws its timeline in a real browser.

// Real time is the point here: tests wait on real servers and processes, not a run's clock.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use drctl::drill::report::model::DrillReport;
use drctl::drill::report::{gantt, html, schema, strip};
use serde_json::{Value, json};

/// A failed drill as its JSON: the RPO missed by 2.3 s, a failback step failed with markup in its
/// error, the step after it never started.
fn sample_json() -> Value {
    let step = |id: &str, name: &str, ty: &str, times: Option<(&str, &str, f64)>, state: &str, after: &[&str]| {
        json!({
            "id": id, "name": name, "step_type": ty, "state": state,
            "started_at": times.map(|t| t.0), "finished_at": times.map(|t| t.1), "duration_s": times.map(|t| t.2),
            "attempts": u32::from(times.is_some()), "already_done": false, "error": null, "after": after,
        })
    };
    let mut notify = step(
        "notify",
        "Notify #incidents",
        "notify.webhook",
        Some(("2026-11-22T07:12:54.000Z", "2026-11-22T07:12:54.400Z", 0.4)),
        "failed",
        &["dns-back"],
    );
    notify["error"] = json!("answered 500: <error code=\"E1\"> & 'retry'");
    let mut skipped = step("primary-health", "Primary region healthy", "http.check", None, "skipped", &["notify"]);
    skipped["error"] = json!("a step it depends on failed");
    json!({
        "schema_version": 2,
        "drill": "us-west-2-zero-rpo", "plan": "us-west-2", "environment": "local", "host": "runner",
        "provenance": {
            "user": "oncall", "approval": "`--yes` on the command line: a drill runs its plan unattended",
            "drctl_version": "0.1.0", "git_commit": "5493c94f00dfeedbeef5493c94f00dfeedbeef00",
            "plan_file": "plans/us-west-2.yaml", "plan_sha256": "a".repeat(64),
            "drill_file": "drills/us-west-2-zero-rpo.yaml", "drill_sha256": "b".repeat(64),
            "inventory": {"route53": ["example.com. api.example.com. A"]},
        },
        "started_at": "2026-11-22T07:12:00.000Z", "finished_at": "2026-11-22T07:13:00.000Z",
        "fault": {"kind": "database_stop", "description": "the primary database stopped hard", "injected_at": "2026-11-22T07:12:04.120Z"},
        "objectives": {
            "rto": {"objective_s": 120.0, "measured_s": 12.3, "met": true, "detail": "fault to the first healthy answer"},
            "rpo": {"objective_s": 0.0, "measured_s": 2.3, "met": false, "detail": "acknowledged client writes missing"},
            "dr_ready_s": 6.8,
        },
        "client": client_json(),
        "runs": [
            {"direction": "failover", "run_id": "fo-1", "state": "succeeded", "started_at": "2026-11-22T07:12:05.000Z",
             "finished_at": "2026-11-22T07:12:17.000Z", "rto_s": 11.42, "critical_path": ["freeze", "promote", "dr-health"],
             "steps": [
                step("freeze", "Freeze writes on the primary", "kube.scale", Some(("2026-11-22T07:12:05.100Z", "2026-11-22T07:12:06.300Z", 1.2)), "succeeded", &[]),
                step("promote", "Promote the DR database", "pg.promote", Some(("2026-11-22T07:12:06.400Z", "2026-11-22T07:12:10.900Z", 4.5)), "succeeded", &["freeze"]),
                step("dr-health", "DR region healthy", "http.check", Some(("2026-11-22T07:12:11.000Z", "2026-11-22T07:12:16.420Z", 5.42)), "succeeded", &["promote"]),
             ]},
            {"direction": "failback", "run_id": "fb-1", "state": "failed", "started_at": "2026-11-22T07:12:40.000Z",
             "finished_at": "2026-11-22T07:12:57.200Z", "rto_s": null, "critical_path": ["resync", "dns-back", "primary-health"],
             "steps": [
                step("resync", "Resync the old primary", "command", Some(("2026-11-22T07:12:40.100Z", "2026-11-22T07:12:52.000Z", 11.9)), "succeeded", &[]),
                step("dns-back", "Point DNS back at us-west-2", "aws.route53.switch", Some(("2026-11-22T07:12:52.100Z", "2026-11-22T07:12:54.000Z", 1.9)), "succeeded", &["resync"]),
                notify, skipped,
             ]},
        ],
        "checks": [{"name": "nothing left behind", "passed": false, "detail": "api-dr still scaled down"}],
        "outcome": {"passed": false, "failures": ["RPO missed: 2.3 s of writes lost against an objective of 0 s (2.3 s over)"]},
        "deviations": ["failback step `notify` failed"],
        "remediation": [{"item": "RPO missed: 2.3 s of writes lost against an objective of 0 s (2.3 s over)", "owner": "", "due": ""}],
    })
}

/// The client's record: a write every 100 ms from 07:12:02.000; those from 07:12:01.900 on lost,
/// refused from the fault (07:12:04.120) through us-east-1, surviving through us-west-2 from
/// 07:12:16.4; three split-brain writes after the promotion at 07:12:10.9.
fn client_json() -> Value {
    let writes: Vec<Value> = (0..150u64)
        .map(|i| {
            let ms = 2000 + i * 100;
            let (region, fate) = match ms {
                ms if ms < 2300 => ("us-east-1", "survived"),
                ms if ms < 4100 => ("us-east-1", "lost"),
                11000..=11200 => ("us-east-1", "split_brain"),
                ms if ms < 16400 => ("us-east-1", "failed"),
                _ => ("us-west-2", "survived"),
            };
            let at = format!("2026-11-22T07:12:{:02}.{:03}Z", ms / 1000, ms % 1000);
            let error = (fate == "failed").then_some("us-east-1: no answer (connection failed)");
            json!({"seq": i + 1, "at": at, "region": region, "fate": fate, "error": error})
        })
        .collect();
    json!({
        "interval_ms": 100, "dns_ttl": "5s (client_dns_ttl)", "attempts": 150, "acknowledged": 42, "failed": 108,
        "outage_started_at": "2026-11-22T07:12:04.200Z", "recovered_at": "2026-11-22T07:12:16.420Z",
        "promoted_at": "2026-11-22T07:12:10.900Z", "final_primary": "us-west-2", "lost_writes": 21,
        "lost_first_at": "2026-11-22T07:12:02.302Z", "lost_last_at": "2026-11-22T07:12:11.202Z",
        "split_brain_writes": 3, "allow_split_brain": false, "writes": writes,
    })
}

fn sample() -> DrillReport {
    serde_json::from_value(sample_json()).expect("the sample is a DrillReport")
}

fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("drills/drill-report.schema.json")
}

#[test]
fn the_committed_schema_is_the_one_drctl_generates() {
    let generated = serde_json::to_string_pretty(&schema()).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(schema_path(), &generated).unwrap();
    }
    let committed = std::fs::read_to_string(schema_path()).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date: run UPDATE_SNAPSHOTS=1 cargo test --test drill_report",
        schema_path().display()
    );
}

#[test]
fn reports_match_the_committed_schema_and_mistakes_do_not() {
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(schema_path()).unwrap()).unwrap();
    jsonschema::meta::validate(&committed).expect("the schema is a valid JSON Schema");
    let validator = jsonschema::validator_for(&committed).expect("the schema compiles");
    let report = serde_json::to_value(sample()).unwrap();
    let errors: Vec<String> = validator.iter_errors(&report).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");

    let mut unknown = report.clone();
    unknown["verdict"] = json!("passed");
    assert!(!validator.is_valid(&unknown), "an unknown field passes");
    let mut nested = report.clone();
    nested["runs"][0]["steps"][0]["retries"] = json!(2);
    assert!(!validator.is_valid(&nested), "an unknown step field passes");
    let mut missing = report.clone();
    missing.as_object_mut().unwrap().remove("outcome");
    assert!(!validator.is_valid(&missing), "a report without outcome passes");
    let mut wrong = report;
    wrong["objectives"]["rto"]["measured_s"] = json!("12.3 s");
    assert!(!validator.is_valid(&wrong), "a measurement of the wrong type passes");
}

const CHROMIUM: &str = "/usr/bin/chromium";

fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let dir = std::env::temp_dir().join(format!("drctl-drill-report-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Screenshots `page` at 1200x900 in headless Chromium; returns the RGBA pixels and the width.
fn screenshot(page: &str, name: &str) -> (Vec<u8>, usize) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: localstack/setup.sh installs chromium (apt-get install -y chromium)"
    );
    let dir = temp_dir(name);
    let profile = temp_dir(&format!("{name}-profile"));
    std::fs::write(dir.join("report.html"), page).unwrap();
    let shot = dir.join("shot.png");
    let mut child = Command::new(CHROMIUM)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .args(["--window-size=1200,900", &format!("file://{}", dir.join("report.html").display())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish the screenshot within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let bytes = std::fs::read(&shot).unwrap_or_else(|e| {
        let mut stderr = String::new();
        let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr);
        panic!("no screenshot ({e}); chromium exited {status}: {stderr}")
    });
    if name == "timeline" || name == "strip" {
        let _ = std::fs::copy(&shot, std::env::temp_dir().join(format!("drill-{name}.png")));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&profile);
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8() | png::Transformations::ALPHA);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).expect("a PNG frame");
    assert_eq!(info.color_type, png::ColorType::Rgba, "RGBA after the transformations");
    pixels.truncate(info.buffer_size());
    (pixels, info.width as usize)
}

/// Pixels of `#2e7d32`, within 6 per channel, below the first `top` rows (the header and cards).
fn succeeded_pixels(pixels: &[u8], width: usize, top: usize) -> usize {
    colour_pixels(pixels, width, top, gantt::SUCCEEDED)
}

/// Pixels of `colour` (`#rrggbb`), within 6 per channel, below the first `top` rows.
fn colour_pixels(pixels: &[u8], width: usize, top: usize, colour: &str) -> usize {
    let target = u32::from_str_radix(colour.trim_start_matches('#'), 16).unwrap();
    let rgb = [(target >> 16) as u8, (target >> 8) as u8, target as u8];
    pixels.chunks_exact(4).skip(width * top).filter(|p| (0..3).all(|c| p[c].abs_diff(rgb[c]) <= 6)).count()
}

#[test]
fn the_html_timeline_renders_in_chromium() {
    let page = html::render(&sample());
    let (pixels, width) = screenshot(&page, "timeline");
    assert_eq!(width, 1200);
    let green = succeeded_pixels(&pixels, width, 200);
    assert!(green >= 400, "only {green} pixels of the succeeded colour below the header: is the timeline drawn?");

    let start = page.find("<svg id=\"timeline\"").expect("the page has the timeline");
    let end = page[start..].find("</svg>").unwrap() + start + "</svg>".len();
    let without = format!("{}{}", &page[..start], &page[end..]);
    let (pixels, width) = screenshot(&without, "no-timeline");
    let green = succeeded_pixels(&pixels, width, 200);
    assert_eq!(green, 0, "pixels of the succeeded colour without the timeline: the check cannot fail");
}

#[test]
fn the_client_strip_shows_lost_and_split_brain_writes_above_the_timeline() {
    let page = html::render(&sample());
    let strip_at = page.find("<svg id=\"client-strip\"").expect("the page has the client strip");
    assert!(strip_at < page.find("<svg id=\"timeline\"").unwrap(), "the strip comes above the step timeline");
    let (pixels, width) = screenshot(&page, "strip");
    let (lost, split) =
        (colour_pixels(&pixels, width, 150, strip::LOST), colour_pixels(&pixels, width, 150, strip::SPLIT_BRAIN));
    assert!(lost >= 100 && split >= 30, "lost {lost} and split-brain {split} pixels: is the strip drawn?");

    let end = page[strip_at..].find("</svg>").unwrap() + strip_at + "</svg>".len();
    let without = format!("{}{}", &page[..strip_at], &page[end..]);
    let (pixels, width) = screenshot(&without, "no-strip");
    let lost = colour_pixels(&pixels, width, 150, strip::LOST);
    assert_eq!(lost, 0, "pixels of the lost colour without the strip: the check cannot fail");
}
