//! What a Web Connector session does with each code, decided from plain data: the line to
//! export and what QuickBooks answered when asked for it. The service does the I/O.
use super::qbxml::{Desired, Key, QbItem};
use crate::file::quickbooks_name;
use crate::{ExportContext, ExportLine, LineResult, fit_description};

/// QuickBooks' limit on an item's own name (one level of the full name).
pub const MAX_NAME: usize = 31;

/// What the query round found for a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// QuickBooks has no such item (status 500).
    Missing,
    Item(QbItem),
}

/// What to do with a code once QuickBooks has been asked about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Add(Desired),
    Mod {
        list_id: String,
        edit_sequence: String,
        item: Desired,
    },
    /// Nothing to write: the outcome is known (QuickBooks already holds it, or a refusal).
    Done(LineResult),
}

/// How the query round asks for a code: by the ListID QuickBooks gave when the Web Connector
/// confirmed it (`by_list_id`; a rename here still finds the item), else by the full name it was
/// last confirmed under (a code the IIF file connector exported, whose key is that name), else
/// by the full name it would have.
pub fn key(line: &ExportLine<'_>, ctx: &ExportContext, by_list_id: bool) -> Key {
    match (line.origin_id, line.previous) {
        (Some(id), _) if by_list_id => Key::ListId(id.to_owned()),
        (_, Some(prev)) => Key::FullName(quickbooks_name(prev.full_code, ctx.delimiter)),
        _ => Key::FullName(quickbooks_name(line.full_code, ctx.delimiter)),
    }
}

/// The item Costbridge wants for a line, or why QuickBooks could not take it.
pub fn desired(line: &ExportLine<'_>, ctx: &ExportContext) -> Result<Desired, String> {
    let full = quickbooks_name(line.full_code, ctx.delimiter);
    let (parent, name) = match full.rsplit_once(':') {
        Some((p, n)) => (Some(p.to_owned()), n.to_owned()),
        None => (None, full.clone()),
    };
    if name.chars().count() > MAX_NAME {
        return Err(format!(
            "Costbridge did not send '{}': QuickBooks names an item by its full code at each level, and '{name}' is longer than QuickBooks' {MAX_NAME} characters. Shorten the code, then send it again.",
            line.full_code
        ));
    }
    Ok(Desired {
        name,
        parent,
        description: fit_description(line.description, ctx.max_description).to_owned(),
        active: line.active,
        income: line.income.as_ref().map(|a| a.code.clone()),
        expense: line.expense.as_ref().map(|a| a.code.clone()),
    })
}

/// What QuickBooks answered when the Web Connector last confirmed a code: its `EditSequence`
/// then, and the accounts the item had (the other fields are the code's confirmed values).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Confirmed {
    pub edit_sequence: String,
    pub income: Option<String>,
    pub expense: Option<String>,
}

/// Whether QuickBooks' item was changed since Costbridge last confirmed it: a newer
/// `EditSequence`, unless the item still holds every confirmed value (the change was undone, or
/// touched only what Costbridge never writes, like a price); for a code another connector
/// confirmed (no `EditSequence` known), its name, description or active flag.
fn changed_in_quickbooks(
    qb: &QbItem, line: &ExportLine<'_>, ctx: &ExportContext, confirmed: Option<&Confirmed>,
) -> bool {
    let fields_differ = line.previous.as_ref().is_some_and(|prev| {
        qb.full_name != quickbooks_name(prev.full_code, ctx.delimiter)
            || qb.description != prev.description
            || qb.active != prev.active
    });
    match confirmed {
        Some(c) => {
            c.edit_sequence != qb.edit_sequence
                && (fields_differ || qb.income != c.income || qb.expense != c.expense)
        }
        None => fields_differ,
    }
}

/// Decides a line. `confirmed` is what QuickBooks answered when the Web Connector last
/// confirmed the code (none for a new code, or one another connector synced).
pub fn decide(
    line: &ExportLine<'_>, ctx: &ExportContext, found: &Found, confirmed: Option<&Confirmed>,
) -> Decision {
    let failed = |message: String| Decision::Done(LineResult::Failed { message });
    let want = match desired(line, ctx) {
        Ok(d) => d,
        Err(m) => return failed(m),
    };
    let wanted = format!(
        "'{}', description '{}', {}",
        want.full_name(),
        want.description,
        if want.active { "active" } else { "inactive" }
    );
    match (found, &line.origin_id) {
        (Found::Missing, Some(id)) if confirmed.is_some() => failed(format!(
            "conflict: QuickBooks no longer has the service item Costbridge confirmed for this code (ListID {id}); it was deleted or merged in QuickBooks. Costbridge sends {wanted}. Reject it here, or restore the item in QuickBooks, then export again."
        )),
        // Never confirmed by QuickBooks itself (new, or only written to an IIF file that may
        // never have been imported): QuickBooks does not have it, so it is added.
        (Found::Missing, _) => Decision::Add(want),
        // A code never confirmed whose name QuickBooks already has: what an add cut off before
        // its answer left behind, taken as it is when it holds what we send.
        (Found::Item(qb), None) if qb.holds(&want) => synced(qb),
        (Found::Item(qb), None) => failed(format!(
            "conflict: QuickBooks already has a service item named '{}' that Costbridge did not create, so it was not overwritten. QuickBooks has: {}. Costbridge sends {wanted}. Rename one of them, then export again.",
            qb.full_name,
            qb.shown()
        )),
        // QuickBooks already holds what is sent (the code was edited here to match it):
        // nothing to write and nothing overwritten.
        (Found::Item(qb), Some(_)) if qb.holds(&want) => synced(qb),
        (Found::Item(qb), Some(_)) => {
            if changed_in_quickbooks(qb, line, ctx, confirmed) {
                let last = line.previous.as_ref().map_or_else(
                    || "nothing".to_owned(),
                    |p| {
                        format!(
                            "'{}', description '{}', {}",
                            quickbooks_name(p.full_code, ctx.delimiter),
                            p.description,
                            if p.active { "active" } else { "inactive" }
                        )
                    },
                );
                failed(format!(
                    "conflict: the service item was changed in QuickBooks since Costbridge last confirmed it (EditSequence {} now), so it was not overwritten. QuickBooks has: {}. Costbridge last confirmed: {last}. Change it back in QuickBooks, or edit the code here to match QuickBooks, then export again.",
                    qb.edit_sequence,
                    qb.shown()
                ))
            } else {
                Decision::Mod {
                    list_id: qb.list_id.clone(),
                    edit_sequence: qb.edit_sequence.clone(),
                    item: want,
                }
            }
        }
    }
}

fn synced(qb: &QbItem) -> Decision {
    Decision::Done(LineResult::Synced {
        origin_id: qb.list_id.clone(),
    })
}

/// QuickBooks' refusal of one code, in words for the approver.
pub fn refusal(full_code: &str, status: i64, message: &str) -> String {
    let hint = match status {
        3100 => {
            " Another item (or a customer, vendor or account) has this name in QuickBooks: rename one of them."
        }
        3140 => {
            " Pick an account QuickBooks has (the GL pickers show QuickBooks' chart as of its last connection)."
        }
        3200 => {
            " It was changed in QuickBooks while Costbridge was writing it: export it again to check the change."
        }
        _ => "",
    };
    format!("QuickBooks refused '{full_code}' (status {status}): {message}.{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GlKind, Previous, test_account, test_line};

    fn ctx() -> ExportContext {
        ExportContext {
            job_id: 1,
            delimiter: '-',
            max_description: None,
        }
    }

    fn qb(seq: &str, full: &str, desc: &str) -> QbItem {
        QbItem {
            list_id: "80000001-1".into(),
            edit_sequence: seq.into(),
            name: full.rsplit(':').next().unwrap().into(),
            full_name: full.into(),
            parent: full.rsplit_once(':').map(|(p, _)| p.into()),
            description: desc.into(),
            active: true,
            income: Some("Income".into()),
            expense: None,
        }
    }

    fn line<'a>(full: &'a str, desc: &'a str, confirmed: Option<&'a str>) -> ExportLine<'a> {
        let mut l = test_line(7, full);
        l.description = desc;
        l.income = Some(test_account("Income", "4000 · Income", GlKind::Income));
        if let Some(prev) = confirmed {
            l.origin_id = Some("80000001-1");
            l.previous = Some(Previous {
                code: l.code,
                full_code: full,
                description: prev,
                active: true,
            });
        }
        l
    }

    #[test]
    fn tiers_become_sub_items_named_by_their_full_code() {
        let d = desired(&line("01-100-20", "Pour", None), &ctx()).unwrap();
        assert_eq!(
            (d.name.as_str(), d.parent.as_deref()),
            ("01-100-20", Some("01:01-100"))
        );
        assert_eq!(d.full_name(), "01:01-100:01-100-20");
        assert_eq!(
            key(&line("01-100", "x", None), &ctx(), false),
            Key::FullName("01:01-100".into())
        );
        assert_eq!(
            key(&line("01-100", "x", Some("x")), &ctx(), true),
            Key::ListId("80000001-1".into())
        );
        // Confirmed through an IIF file: its key is a name; asked for under the confirmed name.
        let mut renamed = line("01-200", "x", Some("x"));
        renamed.previous.as_mut().unwrap().full_code = "01-100";
        assert_eq!(
            key(&renamed, &ctx(), false),
            Key::FullName("01:01-100".into())
        );
        let long = line("01-0123456789012345678901234567890", "x", None);
        let Decision::Done(LineResult::Failed { message }) =
            decide(&long, &ctx(), &Found::Missing, None)
        else {
            panic!("a name over 31 characters is refused");
        };
        assert!(message.starts_with("Costbridge did not send"), "{message}");
    }

    #[test]
    fn new_codes_are_added_and_a_retried_add_takes_what_the_first_made() {
        let l = line("01-100", "Concrete", None);
        assert!(matches!(
            decide(&l, &ctx(), &Found::Missing, None),
            Decision::Add(_)
        ));
        let made = qb("1", "01:01-100", "Concrete");
        assert_eq!(
            decide(&l, &ctx(), &Found::Item(made), None),
            Decision::Done(LineResult::Synced {
                origin_id: "80000001-1".into()
            })
        );
        let other = qb("1", "01:01-100", "Someone else's");
        let Decision::Done(LineResult::Failed { message }) =
            decide(&l, &ctx(), &Found::Item(other), None)
        else {
            panic!()
        };
        assert!(
            message.starts_with("conflict:") && message.contains("Someone else's"),
            "{message}"
        );
    }

    fn confirmed(seq: &str) -> Confirmed {
        Confirmed {
            edit_sequence: seq.into(),
            income: Some("Income".into()),
            expense: None,
        }
    }

    #[test]
    fn confirmed_codes_are_modified_unless_quickbooks_changed_them() {
        let l = line("01-100", "Concrete work", Some("Concrete"));
        let held = qb("5", "01:01-100", "Concrete");
        assert_eq!(
            decide(
                &l,
                &ctx(),
                &Found::Item(held.clone()),
                Some(&confirmed("5"))
            ),
            Decision::Mod {
                list_id: "80000001-1".into(),
                edit_sequence: "5".into(),
                item: desired(&l, &ctx()).unwrap()
            }
        );
        // A newer EditSequence with a confirmed value changed: a conflict, both sides shown.
        let edited = qb("5", "01:01-100", "Edited in QuickBooks");
        let Decision::Done(LineResult::Failed { message }) =
            decide(&l, &ctx(), &Found::Item(edited), Some(&confirmed("4")))
        else {
            panic!()
        };
        assert!(
            message.starts_with("conflict:")
                && message.contains("EditSequence 5")
                && message
                    .contains("QuickBooks has: '01:01-100', description 'Edited in QuickBooks'")
                && message.contains("last confirmed: '01:01-100', description 'Concrete'"),
            "{message}"
        );
        // An account changed in QuickBooks counts too.
        let mut other_account = held.clone();
        other_account.income = Some("Other Income".into());
        assert!(matches!(
            decide(
                &l,
                &ctx(),
                &Found::Item(other_account),
                Some(&confirmed("4"))
            ),
            Decision::Done(LineResult::Failed { .. })
        ));
        // A newer EditSequence on an item still holding every confirmed value (a change undone,
        // or a price): modified.
        assert!(matches!(
            decide(
                &l,
                &ctx(),
                &Found::Item(held.clone()),
                Some(&confirmed("4"))
            ),
            Decision::Mod { .. }
        ));
        // Synced by another connector: the fields decide.
        assert!(matches!(
            decide(&l, &ctx(), &Found::Item(held), None),
            Decision::Mod { .. }
        ));
        let renamed = qb("5", "01:01-100", "Renamed in QuickBooks");
        assert!(matches!(
            decide(&l, &ctx(), &Found::Item(renamed), None),
            Decision::Done(LineResult::Failed { .. })
        ));
        let Decision::Done(LineResult::Failed { message }) =
            decide(&l, &ctx(), &Found::Missing, Some(&confirmed("5")))
        else {
            panic!()
        };
        assert!(message.contains("no longer has"), "{message}");
        // Confirmed only by an IIF file that was never imported: added now.
        assert!(matches!(
            decide(&l, &ctx(), &Found::Missing, None),
            Decision::Add(_)
        ));
        // Already what we send: nothing to write.
        let same = qb("5", "01:01-100", "Concrete work");
        assert!(matches!(
            decide(&l, &ctx(), &Found::Item(same), Some(&confirmed("4"))),
            Decision::Done(LineResult::Synced { .. })
        ));
    }

    #[test]
    fn refusals_name_the_code_status_and_what_to_do() {
        let m = refusal(
            "01-100",
            3140,
            "There is an invalid reference to QuickBooks Account \"Gone\" in the Item.",
        );
        assert!(
            m.starts_with("QuickBooks refused '01-100' (status 3140): There is an invalid"),
            "{m}"
        );
        assert!(m.contains("Pick an account"));
    }
}
