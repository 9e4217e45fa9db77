//! The timeline: an inline SVG Gantt chart of both runs' steps on one axis of seconds after the
//! fault, with the fault, the measured RTO and the RTO objective as vertical lines and the critical
//! path outlined.

use std::fmt::Write;

use super::model::{DrillReport, RunReport, StepReport, StepStatus};
use super::text::{escape, run_title, secs, since_fault, step_state};

/// The fill of a succeeded step's bar.
pub const SUCCEEDED: &str = "#2e7d32";
/// The fill of a step that found its effect already in place.
pub const ALREADY_DONE: &str = "#a5d6a7";
/// The fill of a failed step's bar.
pub const FAILED: &str = "#c62828";
/// The fill of a skipped step.
pub const SKIPPED: &str = "#9e9e9e";
/// The fill of a step that started and never finished (interrupted, running).
pub const UNFINISHED: &str = "#f9a825";
const RTO: &str = "#1565c0";
const FAULT: &str = "#b71c1c";

const WIDTH: f64 = 1080.0;
const LABELS: f64 = 260.0;
const RIGHT: f64 = 70.0;
const TOP: f64 = 64.0;
const ROW: f64 = 24.0;

/// The SVG element (`id="timeline"`). Deterministic; steps that never started get no bar.
pub fn render(report: &DrillReport) -> String {
    let rto = report.objectives.rto.measured_s;
    let objective = report.objectives.rto.objective_s;
    let bars: Vec<Vec<Option<(f64, f64)>>> =
        report.runs.iter().map(|run| run.steps.iter().map(|s| span(report, run, s)).collect()).collect();
    let ends = bars.iter().flatten().flatten().flat_map(|&(a, b)| [a, b]);
    let (low, high) = ends.chain(rto).fold((0.0f64, 1.0f64), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let show_objective = objective <= high * 1.5;
    let high = if show_objective { high.max(objective) } else { high };
    let step = tick_step(high - low);
    let (low, high) = ((low / step).floor() * step, (high / step).ceil() * step);
    let x = |t: f64| LABELS + (t - low) / (high - low) * (WIDTH - LABELS - RIGHT);
    let rows = report.runs.iter().map(|r| r.steps.len() + 1).sum::<usize>() as f64;
    let bottom = TOP + rows * ROW;
    let height = bottom + 44.0;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" \
         role=\"img\" aria-labelledby=\"timeline-title\" font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        svg,
        "<title id=\"timeline-title\">Timeline of drill {}: steps in seconds after the fault</title>",
        escape(&report.drill)
    );
    legend(&mut svg);

    // Row backgrounds: a band for each run's heading, every other step row shaded.
    let mut y = TOP;
    for run in &report.runs {
        let _ = writeln!(svg, "<rect x=\"0\" y=\"{y}\" width=\"{WIDTH}\" height=\"{ROW}\" fill=\"#eef1f5\"/>");
        for i in 0..run.steps.len() {
            y += ROW;
            if i % 2 == 1 {
                let _ = writeln!(svg, "<rect x=\"0\" y=\"{y}\" width=\"{WIDTH}\" height=\"{ROW}\" fill=\"#f7f9fb\"/>");
            }
        }
        y += ROW;
    }

    // Grid and axis.
    let mut t = low;
    while t <= high + step / 2.0 {
        let xt = x(t);
        let _ = writeln!(svg, "<line x1=\"{xt:.1}\" y1=\"{TOP}\" x2=\"{xt:.1}\" y2=\"{bottom}\" stroke=\"#e3e6ea\"/>");
        let _ = writeln!(
            svg,
            "<text x=\"{xt:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{} s</text>",
            bottom + 16.0,
            secs(t)
        );
        t += step;
    }
    let _ = writeln!(
        svg,
        "<line x1=\"{LABELS}\" y1=\"{bottom}\" x2=\"{:.1}\" y2=\"{bottom}\" stroke=\"#9aa0a6\"/>",
        x(high)
    );
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">seconds after the fault</text>",
        (x(low) + x(high)) / 2.0,
        bottom + 34.0
    );

    // Rows.
    let mut y = TOP;
    for (run, spans) in report.runs.iter().zip(&bars) {
        let head = format!("{} run · {} · {}", run_title(run), run.run_id, run.state);
        let _ = writeln!(
            svg,
            "<text x=\"8\" y=\"{:.1}\" font-weight=\"600\" fill=\"#1f2933\">{}</text>",
            y + 16.0,
            escape(&head)
        );
        y += ROW;
        for (step, span) in run.steps.iter().zip(spans) {
            row(&mut svg, run, step, *span, y, &x);
            y += ROW;
        }
    }

    // Vertical markers: the fault, the RTO measured, the RTO objective.
    let marker = |svg: &mut String, t: f64, colour: &str, dash: &str, label: &str, line: f64| {
        let xt = x(t);
        let _ = writeln!(
            svg,
            "<line x1=\"{xt:.1}\" y1=\"{:.1}\" x2=\"{xt:.1}\" y2=\"{bottom}\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/>",
            TOP - line
        );
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\" font-weight=\"600\">{}</text>",
            xt + 4.0,
            TOP - line + 10.0,
            escape(label)
        );
    };
    marker(&mut svg, 0.0, FAULT, "", "fault", 28.0);
    if let Some(rto) = rto {
        marker(&mut svg, rto, RTO, "", &format!("RTO {} s", secs(rto)), 28.0);
    }
    let objective_label = format!("RTO objective {} s", secs(objective));
    if show_objective {
        marker(&mut svg, objective, RTO, " stroke-dasharray=\"6 4\"", &objective_label, 14.0);
    } else {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{RTO}\" font-weight=\"600\">{} →</text>",
            x(high),
            TOP - 4.0,
            escape(&objective_label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The step's bar in seconds after the fault; a step that never finished runs to its run's end.
fn span(report: &DrillReport, run: &RunReport, step: &StepReport) -> Option<(f64, f64)> {
    let start = since_fault(report, step.started_at.as_deref())?;
    let end = since_fault(report, step.finished_at.as_deref())
        .or_else(|| since_fault(report, run.finished_at.as_deref()))
        .or_else(|| since_fault(report, Some(&report.finished_at)))
        .unwrap_or(start);
    Some((start, end.max(start)))
}

fn fill(step: &StepReport) -> &'static str {
    match step.state {
        StepStatus::Succeeded if step.already_done => ALREADY_DONE,
        StepStatus::Succeeded | StepStatus::Passed => SUCCEEDED,
        StepStatus::Failed => FAILED,
        StepStatus::Skipped => SKIPPED,
        StepStatus::Pending | StepStatus::Observing | StepStatus::Acting | StepStatus::Retrying => UNFINISHED,
    }
}

fn row(svg: &mut String, run: &RunReport, step: &StepReport, span: Option<(f64, f64)>, y: f64, x: &dyn Fn(f64) -> f64) {
    let critical = run.critical_path.contains(&step.id);
    let state = step_state(step);
    let tip = format!(
        "{} ({}, {}): {state}{}",
        step.name,
        step.id,
        step.step_type,
        step.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
    );
    let _ = writeln!(svg, "<g class=\"step\"><title>{}</title>", escape(&tip));
    let name: String = if step.name.chars().count() > 36 {
        step.name.chars().take(35).chain(['…']).collect()
    } else {
        step.name.clone()
    };
    let weight = if critical { " font-weight=\"600\"" } else { "" };
    let colour = if step.state == StepStatus::Failed { "#b71c1c" } else { "#1f2933" };
    let _ = writeln!(svg, "<text x=\"20\" y=\"{:.1}\" fill=\"{colour}\"{weight}>{}</text>", y + 16.0, escape(&name));
    match span {
        Some((start, end)) => {
            let (x0, x1) = (x(start), x(end).max(x(start) + 3.0));
            let stroke = if critical { " stroke=\"#111827\" stroke-width=\"2.5\"" } else { "" };
            let _ = writeln!(
                svg,
                "<rect class=\"bar\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"14\" rx=\"2\" fill=\"{}\"{stroke}/>",
                y + 5.0,
                x1 - x0,
                fill(step)
            );
            let mut after = x1 + 6.0;
            if critical {
                let (cx, cy) = (after + 5.0, y + 12.0);
                let _ = writeln!(
                    svg,
                    "<path d=\"M{cx:.1} {:.1}L{:.1} {cy:.1}L{cx:.1} {:.1}L{:.1} {cy:.1}Z\" fill=\"#111827\"/>",
                    cy - 5.0,
                    cx + 5.0,
                    cy + 5.0,
                    cx - 5.0
                );
                after += 14.0;
            }
            let note = match (step.state, step.duration_s) {
                (StepStatus::Succeeded, Some(d)) if !step.already_done => format!("{} s", secs(d)),
                (StepStatus::Passed, Some(d)) => format!("passed in {} s", secs(d)),
                (_, Some(d)) => format!("{} s · {state}", secs(d)),
                (_, None) => state.to_string(),
            };
            let _ = writeln!(
                svg,
                "<text x=\"{after:.1}\" y=\"{:.1}\" fill=\"#52606d\" font-size=\"11\">{}</text>",
                y + 16.0,
                escape(&note)
            );
        }
        None => {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#7b8794\" font-style=\"italic\" font-size=\"11\">not started · {}</text>",
                LABELS + 4.0,
                y + 16.0,
                escape(state)
            );
        }
    }
    svg.push_str("</g>\n");
}

fn legend(svg: &mut String) {
    let mut x = 8.0;
    for (label, fill, stroke) in [
        ("succeeded or passed", SUCCEEDED, ""),
        ("already done", ALREADY_DONE, ""),
        ("failed", FAILED, ""),
        ("skipped", SKIPPED, ""),
        ("unfinished", UNFINISHED, ""),
        ("critical path ◆", "#ffffff", " stroke=\"#111827\" stroke-width=\"2\""),
    ] {
        let _ = writeln!(svg, "<rect x=\"{x}\" y=\"6\" width=\"14\" height=\"12\" rx=\"2\" fill=\"{fill}\"{stroke}/>");
        let _ = writeln!(svg, "<text x=\"{}\" y=\"16\" fill=\"#3e4c59\">{label}</text>", x + 19.0);
        x += 30.0 + label.chars().count() as f64 * 6.6;
    }
}

/// A tick interval of 1, 2 or 5 times a power of ten giving about eight ticks.
fn tick_step(span: f64) -> f64 {
    let raw = (span / 8.0).max(0.001);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|s| *s >= raw).unwrap_or(10.0 * power)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::report::{sample, sample_failed};

    #[test]
    fn bars_markers_and_axis() {
        let svg = render(&sample_failed());
        assert!(svg.starts_with("<svg id=\"timeline\""));
        assert_eq!(svg.matches("class=\"bar\"").count(), 8, "the skipped step gets no bar");
        assert_eq!(
            svg.matches(&format!("fill=\"{SUCCEEDED}\"")).count(),
            8,
            "7 bars (a passed check included) and the legend"
        );
        assert!(svg.contains(&format!("fill=\"{FAILED}\" stroke")) || svg.contains(&format!("fill=\"{FAILED}\"/>")));
        assert!(svg.contains(">RTO 12.3 s</text>") && svg.contains(">fault</text>"));
        assert!(!svg.contains("stroke-dasharray"), "an objective of 120 s is far past a 60 s drill");
        assert!(svg.contains(">RTO objective 120 s →</text>"));
        assert!(svg.contains(">0 s</text>") && svg.contains(">50 s</text>"));
        assert!(svg.contains("&lt;error code=&quot;E1&quot;&gt; &amp; &apos;retry&apos;"));
        assert!(svg.contains("not started · skipped"));
        assert_eq!(svg.matches("<path d=").count(), 6, "one marker per started step on a critical path");
        assert_eq!(svg, render(&sample_failed()));
    }

    #[test]
    fn a_near_objective_is_a_dashed_line() {
        let mut report = sample();
        report.objectives.rto.objective_s = 30.0;
        let svg = render(&report);
        assert!(svg.contains("stroke-dasharray=\"6 4\"/>"));
        assert!(svg.contains(">RTO objective 30 s</text>"));
        assert_eq!(tick_step(60.0), 10.0);
        assert_eq!(tick_step(7.0), 1.0);
    }
}
