//! Reading a journal's bytes back into entries, line by line, without trusting them: a damaged line
//! is reported with its number instead of stopping the read, so callers decide whether the damage
//! matters (it does not for a run that reached its end before it).

use super::{Entry, Record};

/// A line of a journal that is not a record drctl wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

/// What a journal's bytes hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    /// The records that could be read, in file order.
    pub entries: Vec<Entry>,
    /// The line number of each of `entries`.
    pub entry_lines: Vec<usize>,
    /// Lines that are not records (empty when the journal is sound).
    pub damage: Vec<Damage>,
    /// Bytes up to the end of the last complete line; a torn tail after it (a crash in the middle
    /// of a write, never acknowledged) is not part of the journal.
    pub valid_len: u64,
}

/// How a journal ends, as far as its readable records tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// No record at all: the run never started, so nothing can have acted under it.
    Empty,
    /// No final record: the run may be unfinished (running, crashed, interrupted or failed).
    Open,
    /// `run_finished` with success: nothing legitimately follows it.
    Succeeded,
    /// `run_abandoned`: nothing legitimately follows it.
    Abandoned,
}

impl Scan {
    /// How the journal ends: by its last final record (success or abandonment), which no record
    /// can follow, so damage anywhere does not put it in doubt.
    pub fn ending(&self) -> Ending {
        let last_final = self.entries.iter().rev().find_map(|e| match e.record {
            Record::RunFinished { succeeded: true, .. } => Some(Ending::Succeeded),
            Record::RunAbandoned { .. } => Some(Ending::Abandoned),
            _ => None,
        });
        match last_final {
            Some(ending) => ending,
            None if self.entries.is_empty() && self.damage.is_empty() => Ending::Empty,
            None => Ending::Open,
        }
    }

    /// Whether the run was abandoned after its last damaged line: the operator has seen the damage
    /// and given the run up (`drctl abandon` on a damaged journal).
    pub fn damage_acknowledged(&self) -> bool {
        let last_damage = self.damage.iter().map(|d| d.line).max().unwrap_or(0);
        self.entries
            .iter()
            .zip(&self.entry_lines)
            .any(|(e, line)| matches!(e.record, Record::RunAbandoned { .. }) && *line > last_damage)
    }
}

/// Reads journal bytes: every complete line is a record or a [`Damage`]. Records must be numbered
/// in increasing order; a gap or a step back (a record lost or duplicated) is damage too.
pub fn scan_bytes(bytes: &[u8]) -> Scan {
    let mut scan = Scan::default();
    let mut offset = 0usize;
    let mut last_seq: Option<u64> = None;
    let mut damaged_since_last = false;
    for (index, raw) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        if raw.last() != Some(&b'\n') {
            break; // torn write at the tail: the record was never acknowledged
        }
        offset += raw.len();
        scan.valid_len = offset as u64;
        let line = index + 1;
        let text = &raw[..raw.len() - 1];
        let damage = |message: String| Damage { line, message };
        let parsed = std::str::from_utf8(text)
            .map_err(|_| damage("not UTF-8 text".into()))
            .and_then(|t| serde_json::from_str::<Entry>(t).map_err(|e| damage(without_position(&e))));
        let entry = match parsed {
            Ok(entry) => entry,
            Err(d) => {
                scan.damage.push(d);
                damaged_since_last = true;
                continue;
            }
        };
        let expected = last_seq.map_or(1, |s| s.saturating_add(1));
        if last_seq.is_some_and(|last| entry.seq <= last) {
            let message =
                format!("record number {} repeats or goes back (after {expected}): a copy or an edit", entry.seq);
            scan.damage.push(damage(message));
            damaged_since_last = true;
            continue;
        }
        if entry.seq != expected && !damaged_since_last {
            // A gap: a record went missing. The records after it are still real.
            let message = format!("record number {} where {expected} was expected: a record is missing", entry.seq);
            scan.damage.push(damage(message));
        }
        last_seq = Some(entry.seq);
        damaged_since_last = false;
        scan.entries.push(entry);
        scan.entry_lines.push(line);
    }
    scan
}

/// serde_json's message without its "at line 1 column N" (the line is ours to give).
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => format!("{} (column {})", &text[..i], e.column()),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn line(seq: u64, record: Record) -> String {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        format!("{}\n", serde_json::to_string(&Entry { seq, at, record }).unwrap())
    }

    fn step(seq: u64) -> String {
        line(seq, Record::StepStarted { step: "a".into(), attempt: 1 })
    }

    fn finished(seq: u64) -> String {
        line(seq, Record::RunFinished { succeeded: true, message: String::new() })
    }

    #[test]
    fn a_sound_journal_has_no_damage_and_a_torn_tail_is_left_out() {
        let text = format!("{}{}{{\"seq\":3,", step(1), step(2));
        let scan = scan_bytes(text.as_bytes());
        assert_eq!(scan.entries.len(), 2);
        assert!(scan.damage.is_empty());
        assert_eq!(scan.valid_len as usize, text.rfind('\n').unwrap() + 1);
        assert_eq!(scan.ending(), Ending::Open);
    }

    #[test]
    fn garbage_is_damage_at_its_line_and_reading_goes_on() {
        let text = format!("{}garbage\n{}{}", step(1), step(3), finished(4));
        let scan = scan_bytes(text.as_bytes());
        assert_eq!(scan.damage.len(), 1, "{:?}", scan.damage);
        assert_eq!(scan.damage[0].line, 2);
        assert!(!scan.damage[0].message.contains("at line"), "{}", scan.damage[0].message);
        assert_eq!(scan.entry_lines, vec![1, 3, 4]);
        assert_eq!(scan.ending(), Ending::Succeeded, "a success after the damage settles the run");
    }

    #[test]
    fn missing_and_repeated_records_are_damage() {
        let scan = scan_bytes(format!("{}{}{}", step(1), step(3), step(3)).as_bytes());
        assert_eq!(scan.damage.iter().map(|d| d.line).collect::<Vec<_>>(), vec![2, 3], "{:?}", scan.damage);
        assert!(scan.damage[0].message.contains("record number 3 where 2 was expected"), "{:?}", scan.damage);
        assert_eq!(scan.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 3], "a gap keeps what follows");
    }

    #[test]
    fn random_and_mutated_bytes_never_panic_and_keep_line_numbers_in_range() {
        let sound = format!("{}{}{}", step(1), step(2), finished(3)).into_bytes();
        for round in 0..3000 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                (0..fastrand::usize(..200)).map(|_| fastrand::u8(..)).collect()
            } else {
                let mut b = sound.clone();
                for _ in 0..fastrand::usize(1..6) {
                    let i = fastrand::usize(..b.len());
                    b[i] = fastrand::u8(..);
                }
                b
            };
            let scan = scan_bytes(&bytes);
            let lines = bytes.iter().filter(|b| **b == b'\n').count();
            assert!(scan.damage.iter().all(|d| d.line >= 1 && d.line <= lines), "{bytes:?}");
            assert!(scan.valid_len as usize <= bytes.len());
            let _ = scan.ending();
            let _ = crate::journal::parse_holder(&bytes);
        }
    }

    #[test]
    fn endings_and_acknowledged_damage() {
        assert_eq!(scan_bytes(b"").ending(), Ending::Empty);
        assert_eq!(scan_bytes(b"\xff\xfe\n").ending(), Ending::Open, "unreadable lines may hide a start");
        assert_eq!(scan_bytes(b"\xff\xfe\n").damage[0].message, "not UTF-8 text");
        let abandoned = line(3, Record::RunAbandoned { by: "me".into(), damaged_lines: vec![2] });
        let scan = scan_bytes(format!("{}garbage\n{abandoned}", step(1)).as_bytes());
        assert_eq!(scan.ending(), Ending::Abandoned);
        assert!(scan.damage_acknowledged());
        let abandoned = line(2, Record::RunAbandoned { by: "me".into(), damaged_lines: vec![] });
        let scan = scan_bytes(format!("{}{abandoned}garbage\n", step(1)).as_bytes());
        assert_eq!(scan.ending(), Ending::Abandoned);
        assert!(!scan.damage_acknowledged(), "damage after the abandonment is news");
    }
}
