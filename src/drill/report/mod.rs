//! A drill's evidence: one [`model::DrillReport`] rendered as JSON (the published, machine-readable
//! form), Markdown for people and auditors, JUnit XML for CI, a self-contained HTML page with the
//! timeline, and a postmortem draft; and the history of past drills.

pub mod gantt;
pub mod history;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod postmortem;
pub mod strip;
pub mod text;
pub mod timing;

use std::io::Write;
use std::path::{Path, PathBuf};

use model::DrillReport;

/// The `$id` of the report's JSON Schema.
pub const SCHEMA_ID: &str = "urn:drctl:drill-report:v1";

/// Writes `report.json`, `report.md`, `junit.xml`, `report.html` and `postmortem.md` into `dir`
/// (created if missing), each atomically (a temporary file renamed over it); returns their paths.
pub fn write_all(report: &DrillReport, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)? + "\n";
    let files = [
        ("report.json", json),
        ("report.md", markdown::render(report)),
        ("junit.xml", junit::render(report)),
        ("report.html", html::render(report)),
        ("postmortem.md", postmortem::render(report)),
    ];
    let mut paths = Vec::with_capacity(files.len());
    for (name, content) in files {
        paths.push(write_atomically(&dir.join(name), content.as_bytes())?);
    }
    Ok(paths)
}

/// Writes `path` through a temporary file in the same directory, synced, then renamed over it: a
/// reader sees the old file or the whole new one, never half of it.
fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<PathBuf> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("report");
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(content)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map(|()| path.to_path_buf())
}

/// The JSON Schema (draft 2020-12) of [`DrillReport`]'s JSON form, as published in
/// `drills/drill-report.schema.json`.
pub fn schema() -> serde_json::Value {
    let mut value = schemars::schema_for!(DrillReport).to_value();
    if let Some(object) = value.as_object_mut() {
        let mut ordered = serde_json::Map::new();
        ordered.insert("$schema".into(), "https://json-schema.org/draft/2020-12/schema".into());
        ordered.insert("$id".into(), SCHEMA_ID.into());
        ordered.insert("title".into(), "drctl drill report".into());
        for (key, field) in std::mem::take(object) {
            if !ordered.contains_key(&key) {
                ordered.insert(key, field);
            }
        }
        *object = ordered;
    }
    value
}

#[cfg(test)]
mod fixture;
#[cfg(test)]
pub(crate) use fixture::{sample, sample_failed};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_all_writes_the_five_reports_atomically() {
        let dir = std::env::temp_dir().join(format!("drctl-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let report = sample_failed();
        let paths = write_all(&report, &dir.join("nested")).unwrap();
        let names: Vec<_> = paths.iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_string()).collect();
        assert_eq!(names, ["report.json", "report.md", "junit.xml", "report.html", "postmortem.md"]);
        let back: DrillReport = serde_json::from_str(&std::fs::read_to_string(&paths[0]).unwrap()).unwrap();
        assert_eq!(back, report);
        let left: Vec<_> = std::fs::read_dir(dir.join("nested")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 5, "temporary files left behind: {left:?}");
        // Writing again replaces the files.
        write_all(&sample(), &dir.join("nested")).unwrap();
        assert!(std::fs::read_to_string(&paths[1]).unwrap().contains("PASSED"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_schema_is_draft_2020_12_with_an_id() {
        let schema = schema();
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(schema["$id"], SCHEMA_ID);
        assert_eq!(schema["title"], "drctl drill report");
        assert_eq!(schema["additionalProperties"], false);
        assert!(schema["required"].as_array().unwrap().contains(&"outcome".into()));
    }
}
