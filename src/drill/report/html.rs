//! `report.html`: one self-contained page (inline CSS and SVG, no scripts, nothing fetched): the
//! verdict, the objectives as two cards, the client's writes as a strip, the timeline, the runs'
//! steps, the client's figures and checks.

use std::fmt::Write;

use super::model::{ClientReport, DrillReport, Measurement, StepStatus};
use super::text::{clock, clock_ms, column, date, escape, judged, run_title, secs, since_fault, step_state, verdict};
use super::{gantt, strip};

const STYLE: &str = "
*{box-sizing:border-box}
body{margin:0;background:#f4f6f8;color:#1f2933;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
main{max-width:1140px;margin:0 auto;padding:20px 24px 40px}
header{display:flex;align-items:center;justify-content:space-between;gap:16px;margin-bottom:16px}
h1{font-size:22px;margin:0 0 2px}
h2{font-size:16px;margin:0 0 10px}
.meta{color:#52606d;font-size:13px}
.verdict{font-weight:700;letter-spacing:.06em;padding:8px 18px;border-radius:6px;color:#fff;font-size:18px}
.verdict.passed{background:#15803d}.verdict.failed{background:#b91c1c}
.cards{display:grid;grid-template-columns:1fr 1fr 1.3fr;gap:14px;margin-bottom:16px}
.card,section{background:#fff;border:1px solid #dde2e8;border-radius:8px;padding:12px 16px}
section{margin-bottom:16px}
.card{border-left-width:6px}
.card.met{border-left-color:#15803d}.card.missed{border-left-color:#b91c1c}.card.unknown{border-left-color:#9aa5b1}
.card .label{font-size:12px;font-weight:600;text-transform:uppercase;letter-spacing:.08em;color:#52606d}
.card .value{font-size:26px;font-weight:700}
.card.met .value{color:#166534}.card.missed .value{color:#b91c1c}
.card .sub{font-size:13px;color:#3e4c59}
.card .by{font-size:13px;font-weight:600}.card.met .by{color:#166534}.card.missed .by{color:#b91c1c}
.fault .value{font-size:15px;font-weight:600}
.timeline{overflow-x:auto}.timeline svg{display:block;max-width:100%;height:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{color:#52606d;font-weight:600;background:#f8f9fb}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.state{font-weight:600}.s-failed{color:#b91c1c}.s-skipped{color:#7b8794}.s-succeeded{color:#166534}
.steps{table-layout:fixed}.steps td{overflow-wrap:anywhere}td.ok,td.bad{white-space:nowrap}.reason{color:#7b8794;font-style:italic}
.err{color:#b91c1c;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-word}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:16px}
ul{margin:0;padding-left:20px}
.ok{color:#166534;font-weight:600}.bad{color:#b91c1c;font-weight:600}
";

/// The page. Deterministic: the same report gives the same bytes.
pub fn render(report: &DrillReport) -> String {
    let r = report;
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(out, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    let _ = writeln!(
        out,
        "<title>DR drill {}: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>",
        escape(&r.drill),
        verdict(r)
    );
    let class = if r.outcome.passed { "passed" } else { "failed" };
    let _ = writeln!(
        out,
        "<header><div><h1>DR drill {}</h1><div class=\"meta\">plan <b>{}</b> · environment <b>{}</b> · host {} · {} {}–{} UTC</div></div>\
         <div class=\"verdict {class}\">{}</div></header>",
        escape(&r.drill),
        escape(&r.plan),
        escape(&r.environment),
        escape(&r.host),
        date(&r.started_at),
        clock(&r.started_at),
        clock(&r.finished_at),
        verdict(r)
    );
    out.push_str("<div class=\"cards\">\n");
    card(&mut out, "RTO", "recovery time", &r.objectives.rto);
    card(&mut out, "RPO", "data loss", &r.objectives.rpo);
    let _ = writeln!(
        out,
        "<div class=\"card fault unknown\"><div class=\"label\">Fault · {}</div><div class=\"value\">{}</div><div class=\"sub\">injected at {} UTC</div></div>",
        escape(&r.fault.kind),
        escape(&r.fault.description),
        clock(&r.fault.injected_at)
    );
    let p = &r.provenance;
    let _ = writeln!(
        out,
        "</div>\n<p class=\"meta\">{} · run by {} on {} · approval: {} · drctl {}{} · plan {} (SHA-256 {}…)</p>",
        escape(&super::markdown::dr_ready(r)),
        escape(&p.user),
        escape(&r.host),
        escape(&p.approval),
        escape(&p.drctl_version),
        p.git_commit.as_deref().map_or_else(String::new, |c| format!(" ({})", escape(c.get(..12).unwrap_or(c)))),
        escape(&p.plan_file),
        p.plan_sha256.get(..12).unwrap_or(&p.plan_sha256)
    );
    if let Some(t) = &r.timing {
        out.push_str(&super::timing::html(t));
    }
    let strip = strip::render(r);
    if !strip.is_empty() {
        let _ = writeln!(
            out,
            "<section class=\"timeline\"><h2>Client writes through the public name</h2><div class=\"meta\">one mark per write, \
             one row per region it resolved to; the shaded band is the outage clients saw</div>\n{strip}</section>"
        );
    }
    out.push_str("<section class=\"timeline\"><h2>Timeline</h2>\n");
    if let Some(t) = &r.timing {
        let _ = writeln!(
            out,
            "<div class=\"meta\">measured times: the emulated cloud delays ran at time scale {} (not rescaled here; \
             the rescaled RTO is above)</div>",
            t.time_scale
        );
    }
    out.push_str(&gantt::render(r));
    out.push_str("</section>\n");

    if !r.outcome.failures.is_empty() {
        out.push_str("<section><h2>Failures</h2><ul>\n");
        for failure in &r.outcome.failures {
            let _ = writeln!(out, "<li class=\"bad\">{}</li>", escape(failure));
        }
        out.push_str("</ul></section>\n");
    }
    for run in &r.runs {
        let rto = run.rto_s.map_or_else(String::new, |v| format!(" · drctl run time to recovery step {} s", secs(v)));
        let _ = writeln!(
            out,
            "<section><h2>{} run <code>{}</code>: <span class=\"state s-{}\">{}</span></h2><div class=\"meta\">started {} UTC{}{}</div>",
            escape(&run_title(run)),
            escape(&run.run_id),
            escape(run.state.as_str()),
            escape(run.state.as_str()),
            clock(&run.started_at),
            run.finished_at
                .as_deref()
                .map_or_else(|| ", not finished".into(), |f| format!(", finished {} UTC", clock(f))),
            rto
        );
        out.push_str("<table class=\"steps\"><colgroup><col style=\"width:25%\"><col style=\"width:14%\"><col style=\"width:12%\"><col style=\"width:10%\"><col style=\"width:9%\"><col style=\"width:8%\"><col></colgroup>\n");
        out.push_str("<tr><th>Step</th><th>Type</th><th>State</th><th class=\"num\">Start (s after fault)</th><th class=\"num\">Duration (s)</th><th class=\"num\">Attempts</th><th>Note</th></tr>\n");
        for step in &run.steps {
            let critical = if run.critical_path.contains(&step.id) { " ◆" } else { "" };
            let start = since_fault(r, step.started_at.as_deref()).map_or_else(|| "—".into(), column);
            let note = match (&step.error, step.already_done) {
                (Some(error), _) if step.continued => {
                    format!("<span class=\"err\">warning, the run went on: {}</span>", escape(error))
                }
                (Some(error), _) if step.state == StepStatus::Failed => {
                    format!("<span class=\"err\">{}</span>", escape(error))
                }
                (Some(reason), _) => format!("<span class=\"reason\">{}</span>", escape(reason)),
                (None, true) => "already done: nothing changed".into(),
                (None, false) => {
                    step.approval.as_deref().map_or_else(String::new, |a| format!("approved: {}", escape(a)))
                }
            };
            let _ = writeln!(
                out,
                "<tr><td>{}{critical}</td><td><code>{}</code></td><td class=\"state s-{}\">{}</td><td class=\"num\">{start}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{note}</td></tr>",
                escape(&step.name),
                escape(&step.step_type),
                escape(step.state.as_str()),
                escape(step_state(step)),
                step.duration_s.map_or_else(|| "—".into(), column),
                step.attempts
            );
        }
        out.push_str("</table></section>\n");
    }

    out.push_str("<div class=\"grid2\">\n");
    client_section(&mut out, &r.client);
    out.push_str("<section><h2>Checks</h2><table>\n");
    for check in &r.checks {
        let (class, word) = if check.passed { ("ok", "passed") } else { ("bad", "failed") };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"{class}\">{word}</td><td>{}</td></tr>",
            escape(&check.name),
            escape(&check.detail)
        );
    }
    if r.checks.is_empty() {
        out.push_str("<tr><td>No checks were made.</td></tr>\n");
    }
    out.push_str("</table></section>\n</div>\n</main>\n</body>\n</html>\n");
    out
}

fn client_section(out: &mut String, c: &ClientReport) {
    let when = |at: &Option<String>| at.as_deref().map_or_else(|| "—".into(), |at| format!("{} UTC", clock_ms(at)));
    let class = |n: u64| if n == 0 { "ok" } else { "bad" };
    let _ = writeln!(
        out,
        "<section><h2>Client</h2><table><tr><td>One write every</td><td class=\"num\">{} ms</td></tr>\
         <tr><td>DNS cached for</td><td class=\"num\">{}</td></tr>\
         <tr><td>Attempts / acknowledged / failed</td><td class=\"num\">{} / {} / {}</td></tr>\
         <tr><td>Outage</td><td class=\"num\">{} → {}</td></tr><tr><td>DR database promoted</td><td class=\"num\">{}</td></tr>\
         <tr><td>Lost (missing from the final primary)</td><td class=\"num {}\">{}</td></tr>\
         <tr><td>Split brain</td><td class=\"num {}\">{}</td></tr></table></section>",
        c.interval_ms,
        escape(&c.dns_ttl),
        c.attempts,
        c.acknowledged,
        c.failed,
        when(&c.outage_started_at),
        when(&c.recovered_at),
        when(&c.promoted_at),
        class(c.lost_writes),
        c.lost_writes,
        class(c.split_brain_writes),
        c.split_brain_writes
    );
}

fn card(out: &mut String, name: &str, what: &str, m: &Measurement) {
    let class = match m.met {
        Some(true) => "met",
        Some(false) => "missed",
        None => "unknown",
    };
    let value = m.measured_s.map_or_else(|| "not measured".into(), |v| format!("{} s", secs(v)));
    let _ = writeln!(
        out,
        "<div class=\"card {class}\" title=\"{}\"><div class=\"label\">{name} · {what}</div><div class=\"value\">{value}</div>\
         <div class=\"sub\">objective {} s</div><div class=\"by\">{}</div></div>",
        escape(&m.detail),
        secs(m.objective_s),
        escape(judged(name, m).split(": ").nth(1).unwrap_or("not measured"))
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::report::{sample, sample_failed};

    #[test]
    fn the_page_is_self_contained_and_escaped() {
        let page = render(&sample_failed());
        assert!(page.starts_with("<!DOCTYPE html>"));
        for forbidden in ["<script", "src=", "href=", "@import", "url("] {
            assert!(!page.contains(forbidden), "{forbidden} in the page");
        }
        assert!(page.contains("<svg id=\"timeline\""));
        assert!(page.contains("<div class=\"verdict failed\">FAILED</div>"));
        assert!(page.contains("<div class=\"card missed\""));
        assert!(page.contains("objective 0 s</div><div class=\"by\">missed by 2.3 s"));
        assert!(page.contains("objective 120 s</div><div class=\"by\">met with 107.7 s to spare"));
        assert!(page.contains("answered 500: &lt;error code=&quot;E1&quot;&gt; &amp; &apos;retry&apos;"));
        assert!(!page.contains("<error"));
        assert_eq!(page, render(&sample_failed()));
    }

    #[test]
    fn a_passed_drill_is_green() {
        let page = render(&sample());
        assert!(page.contains("<div class=\"verdict passed\">PASSED</div>"));
        assert_eq!(page.matches("<div class=\"card met\"").count(), 2);
        assert!(!page.contains("<h2>Failures</h2>"));
    }
}
