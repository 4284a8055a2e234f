//! How the pages show times and recorded changes.
//! Times are shown in the company's zone by [`crate::zone::Zone::show`] (the viewer's `zone`).
use serde_json::Value;

/// The keys whose values differ between `before` and `after`, as text.
pub fn changes(before: Option<&Value>, after: Option<&Value>) -> Vec<(String, String, String)> {
    let empty = serde_json::Map::new();
    let b = before.and_then(Value::as_object).unwrap_or(&empty);
    let a = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| b.get(*k) != a.get(*k))
        .map(|k| {
            let show = |v: Option<&Value>| match v {
                None | Some(Value::Null) => "—".to_owned(),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => (if *b { "yes" } else { "no" }).to_owned(),
                Some(other) => other.to_string(),
            };
            (k.replace('_', " "), show(b.get(k)), show(a.get(k)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn history_shows_what_changed() {
        let c = changes(
            Some(&json!({"description": "A", "active": true})),
            Some(&json!({"description": "B", "active": false, "via": "import"})),
        );
        assert_eq!(
            c,
            vec![
                ("active".into(), "yes".into(), "no".into()),
                ("description".into(), "A".into(), "B".into()),
                ("via".into(), "—".into(), "import".into())
            ]
        );
    }
}
