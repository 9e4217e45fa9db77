//! The client strip: an inline SVG with one mark per client write on an axis of seconds after the
//! fault, one row per region the public name resolved to, coloured by what became of the write
//! (survived, failed, acknowledged and lost, split brain). The outage window is shaded and the
//! fault and the promotion are vertical lines, so the outage and any split brain show at a glance.

use std::fmt::Write;

use super::model::DrillReport;
use super::text::{escape, secs, since_fault};

/// Fill of a write that survived, by region row (first, second, others).
const SURVIVED: [&str; 3] = ["#1d4ed8", "#0f766e", "#6d28d9"];
/// Fill of a write that was refused or unanswered.
pub const FAILED: &str = "#9aa5b1";
/// Fill of an acknowledged write missing from the final primary.
pub const LOST: &str = "#d97706";
/// Fill of a split-brain write.
pub const SPLIT_BRAIN: &str = "#dc2626";
const OUTAGE: &str = "#fde2e2";

const WIDTH: f64 = 1080.0;
const LABELS: f64 = 120.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 34.0;
const ROW: f64 = 26.0;

/// The SVG element (`id="client-strip"`), or an empty string when the client made no attempt.
pub fn render(report: &DrillReport) -> String {
    let c = &report.client;
    let marks: Vec<(f64, &str, &str, Option<&str>)> = c
        .writes
        .iter()
        .filter_map(|w| {
            let t = since_fault(report, Some(&w.at))?;
            Some((t, w.region.as_deref().unwrap_or("unresolved"), w.fate.as_str(), w.error.as_deref()))
        })
        .collect();
    if marks.is_empty() {
        return String::new();
    }
    let mut rows: Vec<&str> = Vec::new();
    for (_, region, _, _) in &marks {
        if !rows.contains(region) {
            rows.push(region);
        }
    }
    let (low, high) = marks.iter().fold((0.0f64, 1.0f64), |(lo, hi), m| (lo.min(m.0), hi.max(m.0)));
    let x = |t: f64| LABELS + (t - low) / (high - low) * (WIDTH - LABELS - RIGHT);
    let bottom = TOP + rows.len() as f64 * ROW;
    let height = bottom + 30.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg id=\"client-strip\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" \
         height=\"{height}\" role=\"img\" aria-labelledby=\"client-strip-title\" font-family=\"system-ui, -apple-system, \
         'Segoe UI', Roboto, sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        svg,
        "<title id=\"client-strip-title\">{} client writes of drill {}, by region and result, in seconds after the fault</title>",
        c.attempts,
        escape(&report.drill)
    );
    legend(&mut svg);
    let outage = (
        c.outage_started_at.as_deref().and_then(|at| since_fault(report, Some(at))),
        c.recovered_at.as_deref().and_then(|at| since_fault(report, Some(at))),
    );
    if let (Some(start), end) = outage {
        let end = end.unwrap_or(high);
        let label = match outage.1 {
            Some(_) => format!("outage {} s", secs(end - start)),
            None => "outage, no recovery seen".into(),
        };
        let _ = writeln!(
            svg,
            "<rect class=\"outage\" x=\"{:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"{OUTAGE}\"/><text x=\"{:.1}\" y=\"{}\" \
             fill=\"#b91c1c\" font-weight=\"600\" text-anchor=\"middle\">{label}</text>",
            x(start),
            TOP - 4.0,
            (x(end) - x(start)).max(1.0),
            bottom - TOP + 8.0,
            (x(start) + x(end)) / 2.0,
            bottom + 16.0
        );
    }
    for (i, region) in rows.iter().enumerate() {
        let y = TOP + i as f64 * ROW;
        let _ =
            writeln!(svg, "<text x=\"8\" y=\"{:.1}\" fill=\"#3e4c59\">{}</text>", y + ROW / 2.0 + 4.0, escape(region));
        let _ = writeln!(
            svg,
            "<line x1=\"{LABELS}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e4e7eb\"/>",
            WIDTH - RIGHT,
            y + ROW / 2.0,
            y + ROW / 2.0
        );
    }
    let mark_width = ((WIDTH - LABELS - RIGHT) / marks.len() as f64 * 0.8).clamp(1.0, 6.0);
    for (t, region, fate, error) in &marks {
        let row = rows.iter().position(|r| r == region).unwrap_or(0);
        let y = TOP + row as f64 * ROW;
        let (fill, top, tall) = match *fate {
            "survived" => (SURVIVED[row.min(2)], 4.0, ROW - 8.0),
            "lost" => (LOST, 4.0, ROW - 8.0),
            "split_brain" => (SPLIT_BRAIN, 1.0, ROW - 2.0),
            _ => (FAILED, ROW / 2.0 - 3.0, 6.0),
        };
        let tip = match error {
            Some(e) => format!("{} s: {fate}: {}", secs(*t), escape(e)),
            None => format!("{} s: {fate}", secs(*t)),
        };
        let _ = writeln!(
            svg,
            "<rect class=\"write {fate}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{mark_width:.1}\" height=\"{tall:.1}\" fill=\"{fill}\"><title>{tip}</title></rect>",
            x(*t) - mark_width / 2.0,
            y + top
        );
    }
    for (label, at, colour) in [("fault", Some(0.0), "#b71c1c"), ("promoted", promoted(report), "#1565c0")] {
        if let Some(t) = at.filter(|t| (low..=high).contains(t)) {
            let _ = writeln!(
                svg,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{2}\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"4 3\"/>\
                 <text x=\"{0:.1}\" y=\"{3}\" fill=\"{colour}\" text-anchor=\"middle\" font-weight=\"600\">{label}</text>",
                x(t),
                TOP - 6.0,
                bottom + 2.0,
                bottom + 28.0
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn promoted(report: &DrillReport) -> Option<f64> {
    since_fault(report, report.client.promoted_at.as_deref())
}

fn legend(svg: &mut String) {
    let items = [
        (SURVIVED[0], "survived (first region)"),
        (SURVIVED[1], "survived (second region)"),
        (FAILED, "failed"),
        (LOST, "acknowledged, lost"),
        (SPLIT_BRAIN, "split brain"),
    ];
    let mut x = LABELS;
    for (fill, label) in items {
        let _ = writeln!(
            svg,
            "<rect x=\"{x}\" y=\"8\" width=\"10\" height=\"10\" fill=\"{fill}\"/><text x=\"{}\" y=\"17\" fill=\"#3e4c59\">{label}</text>",
            x + 14.0
        );
        x += 14.0 + label.len() as f64 * 6.6 + 18.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::report::{sample, sample_failed};

    #[test]
    fn one_mark_per_write_by_region_and_fate() {
        let svg = render(&sample_failed());
        assert_eq!(svg.matches("<rect class=\"write ").count(), 150);
        assert_eq!(svg.matches("<rect class=\"write split_brain\"").count(), 3);
        assert_eq!(svg.matches(&format!("fill=\"{LOST}\"><title>")).count(), 8);
        assert!(svg.contains(">us-east-1</text>") && svg.contains(">us-west-2</text>"));
        assert!(svg.contains("outage 12.2 s"), "outage from 0.08 s to 12.3 s after the fault");
        assert!(svg.contains(">promoted</text>") && svg.contains(">fault</text>"));
        let mut quiet = sample();
        quiet.client.writes.clear();
        assert_eq!(render(&quiet), "");
    }
}
