//! How the pages show counts, times and recorded changes.
//! Times are shown in the company's zone by [`crate::zone::Zone::show`] (the viewer's `zone`).
//! Templates call the count helpers by path (`crate::web::format::codes(n)`).
use serde_json::Value;
use std::fmt::Display;

/// A count with its thousands grouped ("100,000"): a run of six digits is misread by a factor
/// of ten at a glance, and the queue and lists do reach that size.
pub fn grouped(n: impl Display) -> String {
    let digits = n.to_string();
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(rest) => ("-", rest.to_owned()),
        None => ("", digits),
    };
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// A grouped count with its noun in the number it takes: "1 event", "2,500 events".
pub fn count(n: impl Display, one: &str, many: &str) -> String {
    let n = grouped(n);
    let noun = if n == "1" { one } else { many };
    format!("{n} {noun}")
}

/// "1 code", "100,000 codes".
pub fn codes(n: impl Display) -> String {
    count(n, "code", "codes")
}

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
    fn counts_are_grouped_and_agree_with_their_noun() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(100_000_i64), "100,000");
        assert_eq!(grouped(1_234_567_usize), "1,234,567");
        assert_eq!(grouped(-12_345), "-12,345");
        assert_eq!(codes(1), "1 code");
        assert_eq!(codes(0), "0 codes");
        assert_eq!(codes(100_000), "100,000 codes");
        assert_eq!(count(1, "event", "events"), "1 event");
        assert_eq!(count(2500, "event", "events"), "2,500 events");
    }

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
