//! The latency-profile part of a report: which RTO is measured (emulated delays at the drill's
//! time scale) and which is rescaled to real time, with the method and the delays themselves.

use std::fmt::Write as _;

use super::model::TimingReport;
use super::text::{escape, secs};

fn met(t: &TimingReport) -> &'static str {
    match t.rescaled_met {
        Some(true) => "met",
        Some(false) => "missed",
        None => "not measured",
    }
}

fn rescaled(t: &TimingReport) -> String {
    t.rescaled_rto_s.map_or_else(|| "not measured".into(), |v| format!("{} s", secs(v)))
}

/// The HTML card and section: the measured RTO, the rescaled one, the method, the delays.
pub fn html(t: &TimingReport) -> String {
    let mut out = String::new();
    let class = if t.rescaled_met == Some(false) { "failed" } else { "passed" };
    let _ = writeln!(
        out,
        "<section class=\"timing\"><h2>Cloud-realistic timing</h2><div class=\"cards\">\
         <div class=\"card\"><div class=\"label\">RTO measured (emulated delays at time scale {})</div>\
         <div class=\"value\">{}</div><div class=\"sub\">the timeline below shows these times</div></div>\
         <div class=\"card {class}\"><div class=\"label\">RTO rescaled to real time</div><div class=\"value\">{}</div>\
         <div class=\"sub\">against the plan's RTO of {} s: {}</div></div></div>",
        t.time_scale,
        t.measured_rto_s.map_or_else(|| "not measured".into(), |v| format!("{} s", secs(v))),
        rescaled(t),
        secs(t.plan_rto_s),
        met(t)
    );
    let _ = writeln!(
        out,
        "<p class=\"meta\">Profile {} ({}). Method: {}.</p>",
        escape(&t.profile),
        t.seed.map_or_else(|| "p50 of each operation".into(), |s| format!("sampled with seed {s}")),
        escape(&t.method)
    );
    out.push_str(&delays_table(t, true));
    out.push_str("</section>\n");
    out
}

/// The Markdown section.
pub fn markdown(t: &TimingReport) -> String {
    let mut out = String::from("## Cloud-realistic timing\n\n");
    let _ = writeln!(out, "| RTO | Seconds | Note |\n| --- | --- | --- |");
    let _ = writeln!(
        out,
        "| Measured | {} | emulated delays at time scale {} (the timeline's times) |",
        t.measured_rto_s.map_or_else(|| "not measured".into(), secs),
        t.time_scale
    );
    let _ = writeln!(
        out,
        "| Rescaled to real time | {} | against the plan's RTO of {} s: {} |",
        rescaled(t),
        secs(t.plan_rto_s),
        met(t)
    );
    let _ = writeln!(out, "\nProfile `{}`. Method: {}.\n", t.profile, t.method);
    out.push_str(&delays_table(t, false));
    out
}

fn delays_table(t: &TimingReport, html: bool) -> String {
    let mut out = String::new();
    if html {
        out.push_str("<table><tr><th>Emulated operation</th><th>Resource</th><th>Start (UTC)</th><th class=\"num\">Delay</th><th class=\"num\">Profile</th></tr>\n");
    } else {
        out.push_str(
            "| Emulated operation | Resource | Start (UTC) | Delay | Profile |\n| --- | --- | --- | --- | --- |\n",
        );
    }
    for d in &t.delays {
        let profile = d.profile_s.map_or_else(String::new, |p| format!("{} s", secs(p)));
        let resource = d.resource.as_deref().unwrap_or("");
        if html {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{} s</td><td class=\"num\">{profile}</td></tr>",
                escape(&d.operation),
                escape(resource),
                escape(&d.start),
                secs(d.delay_s)
            );
        } else {
            let _ =
                writeln!(out, "| {} | {} | {} | {} s | {profile} |", d.operation, resource, d.start, secs(d.delay_s));
        }
    }
    if html {
        out.push_str("</table>\n");
    }
    out
}
