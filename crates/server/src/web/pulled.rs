//! What Sync from ERP did, as the ERP Integrations page shows it: the counts, and each conflict
//! in words. The API answers the same summary as JSON (`local` and `erp` as stored); an
//! accountant read that JSON on this page and had to spot the difference themselves.
use super::error::capitalise;
use askama::Template;
use costbridge_storage::pull::{Conflict, PullSummary};
use serde_json::Value;

/// How many conflicts the page lists. A pull that meets 10,000 drew 10,000 rows; the first
/// ones are enough to start on, and each pull lists the conflicts still left.
const SHOWN: usize = 50;

/// The fields a pull compares, as the page names them.
const FIELDS: [(&str, &str); 3] = [
    ("full_code", "Code"),
    ("description", "Description"),
    ("active", "Active"),
];

#[derive(Template)]
#[template(path = "_erp_pulled.html")]
pub struct Pulled {
    s: PullSummary,
    shown: Vec<ConflictView>,
}

/// One conflicting code and what differs, a sentence each.
struct ConflictView {
    full_code: String,
    said: Vec<String>,
}

impl Pulled {
    pub fn new(s: PullSummary) -> Pulled {
        let shown = s
            .conflicts
            .iter()
            .take(SHOWN)
            .map(|c| ConflictView {
                full_code: c.full_code.clone(),
                said: in_words(c),
            })
            .collect();
        Pulled { s, shown }
    }

    /// The conflicts past the ones listed.
    fn unshown(&self) -> usize {
        self.s.conflicts.len() - self.shown.len()
    }
}

/// A conflict as sentences: why the ERP's code was not added, or each field that differs.
fn in_words(c: &Conflict) -> Vec<String> {
    let here = &c.local;
    let error = here.get("error").and_then(Value::as_str);
    // A code the ERP has and Costbridge could not take at all: `local` holds only why.
    if here.get("full_code").is_none() {
        return match (here.get("missing_parent").and_then(Value::as_str), error) {
            (Some(parent), _) => vec![format!(
                "Not added here: its parent {parent} is not in Costbridge. Add {parent} here \
                 (or fix it in the ERP), then sync again."
            )],
            (None, Some(e)) => vec![format!(
                "Not added here: the ERP's code {}. Correct it in the ERP, then sync again.",
                e.strip_prefix("full_code ").unwrap_or(e)
            )],
            (None, None) => vec!["Not added here.".to_owned()],
        };
    }
    let mut said: Vec<String> = error
        .map(|e| format!("{}.", capitalise(e)))
        .into_iter()
        .collect();
    for (key, label) in FIELDS {
        let (mine, theirs) = (here.get(key), c.erp.get(key));
        if mine != theirs {
            said.push(format!(
                "{label}: {} in Costbridge, {} in the ERP",
                value(mine),
                value(theirs)
            ));
        }
    }
    if said.is_empty() {
        // Both sides agree, but the code is on its way to the ERP (Ready to Export, Exporting,
        // Failed): a pull does not take it out of the queue.
        let status = here
            .get("sync_status")
            .and_then(Value::as_str)
            .unwrap_or("waiting");
        said.push(format!(
            "The same in both, but here the code is in the export queue ({status}): it stays \
             there until it is exported or rejected."
        ));
    }
    said
}

/// A field's value as a person reads it: text in quotes, yes or no.
fn value(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => format!("“{s}”"),
        Some(Value::Bool(b)) => (if *b { "yes" } else { "no" }).to_owned(),
        None | Some(Value::Null) => "nothing".to_owned(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn said(local: Value) -> Vec<String> {
        in_words(&Conflict {
            full_code: "02-100".into(),
            local,
            erp: json!({"full_code": "02-100", "description": "Demolition", "active": true}),
        })
    }

    #[test]
    fn each_kind_of_conflict_in_words() {
        assert_eq!(
            said(json!({"missing_parent": "02"})),
            [
                "Not added here: its parent 02 is not in Costbridge. Add 02 here (or fix it in the \
              ERP), then sync again."
            ]
        );
        assert_eq!(
            said(json!({"error": "full_code has leading or trailing spaces"})),
            [
                "Not added here: the ERP's code has leading or trailing spaces. Correct it in the \
              ERP, then sync again."
            ]
        );
        // A rename in the ERP, with the rest the same: only the code is named.
        assert_eq!(
            said(
                json!({"full_code": "02-110", "description": "Demolition", "active": true,
                "sync_status": "synced"})
            ),
            ["Code: “02-110” in Costbridge, “02-100” in the ERP"]
        );
        assert_eq!(
            said(
                json!({"full_code": "02-100", "description": "Demolition", "active": true,
                "sync_status": "pending", "error": "changed in Costbridge while the ERP was \
                being read (an export or an edit); run Sync from ERP again"})
            ),
            [
                "Changed in Costbridge while the ERP was being read (an export or an edit); run \
              Sync from ERP again."
            ]
        );
        assert_eq!(
            said(
                json!({"full_code": "02-100", "description": "Demolition", "active": true,
                "sync_status": "failed"})
            ),
            [
                "The same in both, but here the code is in the export queue (failed): it stays \
              there until it is exported or rejected."
            ]
        );
    }
}
