//! What `aws.secrets.put` writes: a `value` or `json` keys, whose strings may name keys of the
//! secret's current version as `${secret:KEY}`. The step fills those in memory at the moment it
//! writes, so a password never passes through a template, an output or the journal.

use serde_json::{Map, Value};

use super::SecretValue;
use crate::step::StepError;

/// The opening of a placeholder; it ends at the next `}`.
const OPEN: &str = "${secret:";

/// One piece of a string with placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Key(&'a str),
}

/// Splits `template` into text and `${secret:KEY}` placeholders.
fn pieces(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find(OPEN) {
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + OPEN.len()..];
        let end = after.find('}').ok_or("`${secret:` is not closed by `}`")?;
        let key = &after[..end];
        if key.is_empty() {
            return Err("`${secret:}` names no key; write `${secret:KEY}`".into());
        }
        out.push(Piece::Key(key));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// Checks the placeholder syntax of `template` (for parameter checks, before any AWS call), and
/// that it writes no password literally: a connection URL's password or a `password=` value must
/// be a `${secret:KEY}` taken from the current version, as `pg.promote` refuses one in its DSN.
pub(super) fn check(template: &str) -> Result<(), String> {
    pieces(template)?;
    let placeholder = |text: &str| pieces(text).is_ok_and(|ps| ps.iter().all(|p| matches!(p, Piece::Key(_))));
    if crate::steps::pg::literal_password(template, placeholder) {
        return Err("it holds a password written out: a plan must never hold one. Write `${secret:KEY}` for it, \
                    taken from the secret's current version, such as postgres://app:${secret:password}@HOST/app"
            .into());
    }
    Ok(())
}

/// The content a put wants.
#[derive(Debug, Clone)]
pub(super) enum Desired {
    /// The whole secret string.
    Value(String),
    /// JSON keys, merged over the current JSON object or replacing it.
    Json { entries: Vec<(String, String)>, merge: bool },
}

impl Desired {
    /// The plan's description of the content: templates with `${secret:KEY}` unfilled, so it holds
    /// no value read from Secrets Manager.
    pub(super) fn fingerprint(&self) -> String {
        match self {
            Desired::Value(template) => format!("value\0{template}"),
            Desired::Json { entries, merge } => {
                let mut text = format!("json\0{merge}");
                for (key, template) in entries {
                    text.push_str(&format!("\0{key}\0{template}"));
                }
                text
            }
        }
    }
}

/// The current version of a secret, as far as filling and comparing need it.
pub(super) struct Current<'a> {
    /// For messages: `secret `ID` (version V) in REGION`.
    pub what: &'a str,
    pub text: &'a SecretValue,
}

/// A secret's JSON object in memory; its strings are wiped when dropped.
pub(super) struct SecretJson(pub Map<String, Value>);

impl Drop for SecretJson {
    fn drop(&mut self) {
        self.0.values_mut().for_each(wipe_value);
    }
}

fn wipe_value(value: &mut Value) {
    match value {
        Value::String(s) => super::wipe(s),
        Value::Array(items) => items.iter_mut().for_each(wipe_value),
        Value::Object(map) => map.values_mut().for_each(wipe_value),
        _ => {}
    }
}

/// The secret's string as a JSON object, or `None` when it is not one.
pub(super) fn as_object(text: &SecretValue) -> Option<SecretJson> {
    match serde_json::from_str::<Value>(text.expose()) {
        Ok(Value::Object(map)) => Some(SecretJson(map)),
        Ok(mut other) => {
            wipe_value(&mut other);
            None
        }
        Err(_) => None,
    }
}

/// The keys of a JSON object, for messages: `a, b, c` or `(none)`.
pub(super) fn key_list(map: &Map<String, Value>) -> String {
    if map.is_empty() { "(none)".to_string() } else { map.keys().cloned().collect::<Vec<_>>().join(", ") }
}

/// `template` with each `${secret:KEY}` replaced by that key of the current version. `field` names
/// the parameter for messages (`with.json.DATABASE_URL`). Errors name keys, never values.
fn fill(
    template: &str,
    field: &str,
    current: Option<(&Current<'_>, Option<&SecretJson>)>,
) -> Result<String, StepError> {
    let mut out = String::new();
    for piece in pieces(template).map_err(|e| StepError::fatal(format!("`{field}`: {e}")))? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Key(key) => {
                let Some((current, json)) = current else {
                    super::wipe(&mut out);
                    return Err(StepError::fatal(format!(
                        "`{field}` uses `${{secret:{key}}}`, but the secret does not exist yet to take `{key}` from"
                    )));
                };
                let Some(json) = json else {
                    super::wipe(&mut out);
                    return Err(StepError::fatal(format!(
                        "`{field}` uses `${{secret:{key}}}`, but {} is not a JSON object",
                        current.what
                    )));
                };
                match json.0.get(key) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(v @ (Value::Number(_) | Value::Bool(_))) => out.push_str(&v.to_string()),
                    Some(_) => {
                        super::wipe(&mut out);
                        return Err(StepError::fatal(format!(
                            "`{field}` uses `${{secret:{key}}}`, but key `{key}` of {} is not a string, number or boolean",
                            current.what
                        )));
                    }
                    None => {
                        super::wipe(&mut out);
                        return Err(StepError::fatal(format!(
                            "`{field}` uses `${{secret:{key}}}`, but {} has no key `{key}`; its keys are: {}",
                            current.what,
                            key_list(&json.0)
                        )));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// What the put would write, given the current version (`None` when the secret does not exist),
/// and whether the current version already holds exactly that.
pub(super) fn desired(desired: &Desired, current: Option<&Current<'_>>) -> Result<(SecretValue, bool), StepError> {
    let json = current.and_then(|c| as_object(c.text));
    let source = current.map(|c| (c, json.as_ref()));
    match desired {
        Desired::Value(template) => {
            let value = SecretValue::new(fill(template, "with.value", source)?);
            let same = current.is_some_and(|c| c.text.expose() == value.expose());
            Ok((value, same))
        }
        Desired::Json { entries, merge } => {
            let mut map = match (merge, current, &json) {
                (true, Some(_), Some(json)) => json.0.clone(),
                (true, Some(c), None) => {
                    return Err(StepError::fatal(format!(
                        "{} is not a JSON object, so `with.json` cannot be merged into it; set `merge: false` to \
                         replace it, or write the whole secret with `with.value`",
                        c.what
                    )));
                }
                _ => Map::new(),
            };
            for (key, template) in entries {
                let filled = fill(template, &format!("with.json.{key}"), source)?;
                if let Some(mut old) = map.insert(key.clone(), Value::String(filled)) {
                    wipe_value(&mut old);
                }
            }
            let map = SecretJson(map);
            let same = json.as_ref().is_some_and(|j| j.0 == map.0);
            let text = serde_json::to_string(&map.0)
                .map_err(|_| StepError::fatal("the new secret JSON could not be written".to_string()))?;
            Ok((SecretValue::new(text), same))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current(text: &str) -> SecretValue {
        SecretValue::new(text.to_string())
    }

    fn entries(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const WHAT: &str = "secret `db` (version v1) in us-west-2";

    #[test]
    fn placeholders_parse_and_check() {
        assert_eq!(
            pieces("a${secret:pw}b${secret:x}").unwrap(),
            vec![Piece::Text("a"), Piece::Key("pw"), Piece::Text("b"), Piece::Key("x")]
        );
        assert_eq!(pieces("$HOME and ${other}").unwrap(), vec![Piece::Text("$HOME and ${other}")]);
        assert!(check("x${secret:pw").unwrap_err().contains("not closed"));
        assert!(check("x${secret:}").unwrap_err().contains("names no key"));
    }

    #[test]
    fn passwords_written_out_are_refused_and_placeholders_pass() {
        for literal in [
            "postgres://app:hunter2@db.example.com:5432/app",
            "postgres://app:hunter2@{{ steps.promote.outputs.endpoint }}/app",
            "host=db user=app password=hunter2",
            "postgres://app@db/app?password=hunter2",
            "postgres://app:${secret:password}x@db/app",
        ] {
            let e = check(literal).unwrap_err();
            assert!(e.contains("password written out") && !e.contains("hunter2"), "{literal}: {e}");
        }
        for fine in [
            "postgres://app:${secret:password}@{{ steps.promote.outputs.endpoint }}/app",
            "host=db user=app password=${secret:password}",
            "postgres://app@db/app",
            "plain value",
        ] {
            assert_eq!(check(fine), Ok(()), "{fine}");
        }
    }

    #[test]
    fn json_merges_and_fills_from_the_current_version() {
        let text = current(r#"{"username":"app","password":"pa\"ss","port":5432,"DATABASE_URL":"old"}"#);
        let c = Current { what: WHAT, text: &text };
        let want = Desired::Json {
            entries: entries(&[("DATABASE_URL", "postgres://app:${secret:password}@new:${secret:port}/app")]),
            merge: true,
        };
        let (value, same) = desired(&want, Some(&c)).unwrap();
        assert!(!same);
        let written: Value = serde_json::from_str(value.expose()).unwrap();
        assert_eq!(written["DATABASE_URL"], "postgres://app:pa\"ss@new:5432/app");
        assert_eq!(written["password"], "pa\"ss");
        assert_eq!(written["port"], 5432);
        // Key order is kept: the merged key stays where it was.
        assert!(value.expose().starts_with(r#"{"username":"app","#), "{}", value.expose());

        // Writing that back is "already done".
        let c2 = Current { what: WHAT, text: &value };
        assert!(desired(&want, Some(&c2)).unwrap().1);
    }

    #[test]
    fn replace_and_value_modes() {
        let text = current(r#"{"a":"1","b":"2"}"#);
        let c = Current { what: WHAT, text: &text };
        let replace = Desired::Json { entries: entries(&[("a", "1")]), merge: false };
        let (value, same) = desired(&replace, Some(&c)).unwrap();
        assert_eq!((value.expose(), same), (r#"{"a":"1"}"#, false));
        let (value, same) = desired(&Desired::Value("x-${secret:b}".into()), Some(&c)).unwrap();
        assert_eq!((value.expose(), same), ("x-2", false));
        let plain = current("x-2");
        let c = Current { what: WHAT, text: &plain };
        assert!(desired(&Desired::Value("x-2".into()), Some(&c)).unwrap().1);
        assert!(desired(&Desired::Value("x-2".into()), None).is_ok());
    }

    #[test]
    fn errors_name_keys_never_values() {
        let text = current(r#"{"username":"app","password":"s3cr3t-VALUE"}"#);
        let c = Current { what: WHAT, text: &text };
        let want = Desired::Json { entries: entries(&[("URL", "${secret:pasword}")]), merge: true };
        let e = desired(&want, Some(&c)).unwrap_err();
        assert!(!e.is_retryable());
        assert_eq!(
            e.message,
            "`with.json.URL` uses `${secret:pasword}`, but secret `db` (version v1) in us-west-2 has no key \
             `pasword`; its keys are: username, password"
        );
        let plain = current("s3cr3t-VALUE");
        let c = Current { what: WHAT, text: &plain };
        let e = desired(&Desired::Value("${secret:password}".into()), Some(&c)).unwrap_err();
        assert!(e.message.contains("is not a JSON object") && !e.message.contains("s3cr3t"), "{e}");
        let e = desired(&want, Some(&c)).unwrap_err();
        assert!(e.message.contains("merge: false") && !e.message.contains("s3cr3t"), "{e}");
        let e = desired(&want, None).unwrap_err();
        assert!(e.message.contains("does not exist yet"), "{e}");
    }
}
