//! "Did you mean" for misspelt keys, step types and step ids: only names near enough to be a
//! likely typo are suggested, measured relative to their length, so `zz` never suggests `a`.

/// The candidate nearest to `word`, if it is a likely typo of it: at most one edit per three
/// characters of the longer name.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = word.chars().count();
    candidates
        .into_iter()
        .filter_map(|c| {
            let longer = len.max(c.chars().count());
            // No edit distance can be below the difference of the lengths: skip what cannot match.
            if 3 * len.abs_diff(c.chars().count()) > longer {
                return None;
            }
            let d = edit_distance(word, c);
            (d > 0 && 3 * d <= longer).then_some((d, c))
        })
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// The `n` candidates nearest to `word` by edit distance, nearest first (ties in candidate order).
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>, n: usize) -> Vec<&'a str> {
    let mut scored: Vec<(usize, usize, &str)> =
        candidates.into_iter().enumerate().map(|(i, c)| (edit_distance(word, c), i, c)).collect();
    if scored.len() > n {
        scored.select_nth_unstable(n);
        scored.truncate(n);
    }
    scored.sort_unstable();
    scored.into_iter().map(|(_, _, c)| c).collect()
}

/// Levenshtein distance, in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + usize::from(ca != cb));
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP_KEYS: &[&str] = &["id", "name", "type", "with", "after", "timeout", "retries", "marks_recovery"];

    #[test]
    fn typos_find_their_intended_word() {
        assert_eq!(closest("retires", STEP_KEYS.iter().copied()), Some("retries"));
        assert_eq!(closest("afterr", STEP_KEYS.iter().copied()), Some("after"));
        assert_eq!(closest("tiemout", STEP_KEYS.iter().copied()), Some("timeout"));
        assert_eq!(closest("aproval", ["approval", "wait"]), Some("approval"));
        assert_eq!(closest("zzzzzz", STEP_KEYS.iter().copied()), None);
    }

    #[test]
    fn names_that_are_nothing_alike_suggest_nothing() {
        assert_eq!(closest("zz", ["a"]), None);
        assert_eq!(closest("fb", ["b"]), None);
        assert_eq!(closest("db", ["dns"]), None);
        assert_eq!(closest("s1", ["s2"]), None, "one edit in two characters is half the name");
        assert_eq!(closest("approve", ["approve"]), None, "a name is not a typo of itself");
    }

    #[test]
    fn nearest_orders_by_distance() {
        assert_eq!(nearest("scale", ["dns", "scale-dr", "scale-db", "verify"], 2), vec!["scale-dr", "scale-db"]);
        assert_eq!(nearest("x", ["a"], 3), vec!["a"]);
    }
}
