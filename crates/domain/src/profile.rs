//! ERP profiles: what each ERP accepts, read from the TOML files in `profiles/` (compiled into
//! the binary so one file ships everything) and applied to codes at send time.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DescriptionOverflow {
    /// A description over the limit makes the code invalid for this ERP.
    Refuse,
    /// The snapshot sent is cut to the limit, and the item says so.
    Truncate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub max_tiers: usize,
    /// Fewer than this many tiers breaks the rule (Sage Intacct: every code has a delimiter).
    #[serde(default = "one")]
    pub min_tiers: usize,
    pub max_segment_length: usize,
    pub max_full_code_length: usize,
    /// The longest name an item may have in an ERP that names each tier's item by that tier's
    /// full code (QuickBooks Desktop: "01:01-100", 31 characters a name), so the full code
    /// must fit it as well as `max_full_code_length`.
    #[serde(default)]
    pub max_item_name_length: Option<usize>,
    /// Characters allowed besides ASCII letters and digits.
    pub extra_characters: String,
    pub delimiters: Vec<char>,
    pub income_account_required: bool,
    pub max_description_length: usize,
    pub description_overflow: DescriptionOverflow,
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "tryton", "name": "Tryton", "create_cost_codes": true, "rules": {"max_tiers": 5, "min_tiers": 1,
    "max_segment_length": 10, "max_full_code_length": 40, "max_item_name_length": null, "extra_characters": "-.",
    "delimiters": ["-"], "income_account_required": false, "max_description_length": 120, "description_overflow": "refuse"}}))]
pub struct ErpProfile {
    pub id: String,
    pub name: String,
    /// False for import-only ERPs, which own their cost codes.
    pub create_cost_codes: bool,
    pub rules: Rules,
}

const BUILTIN: [&str; 9] = [
    include_str!("../../../profiles/tryton.toml"),
    include_str!("../../../profiles/quickbooks_desktop.toml"),
    include_str!("../../../profiles/xero.toml"),
    include_str!("../../../profiles/sage_300_cre.toml"),
    include_str!("../../../profiles/viewpoint_vista.toml"),
    include_str!("../../../profiles/viewpoint_spectrum.toml"),
    include_str!("../../../profiles/sage_intacct.toml"),
    include_str!("../../../profiles/cmic.toml"),
    include_str!("../../../profiles/acumatica.toml"),
];

impl ErpProfile {
    /// Every shipped profile. The files are part of the build, so a bad one fails the tests.
    pub fn builtin() -> Vec<ErpProfile> {
        BUILTIN
            .iter()
            .map(|text| toml::from_str(text).expect("shipped ERP profiles parse"))
            .collect()
    }

    pub fn find(id: &str) -> Option<ErpProfile> {
        Self::builtin().into_iter().find(|p| p.id == id)
    }

    /// Every rule a code breaks for this ERP, as sentences an admin can act on.
    pub fn check_code(&self, full_code: &str, description: &str, delimiter: char) -> Vec<String> {
        let r = &self.rules;
        let mut errors = Vec::new();
        if !r.delimiters.contains(&delimiter) {
            let allowed: String = r.delimiters.iter().map(|d| format!("'{d}' ")).collect();
            errors.push(format!(
                "{} allows only the delimiters {}; this company uses '{delimiter}'",
                self.name,
                allowed.trim_end()
            ));
        }
        let segments: Vec<&str> = full_code.split(delimiter).collect();
        if segments.len() > r.max_tiers {
            errors.push(format!(
                "has {} tiers; {} allows at most {}",
                segments.len(),
                self.name,
                r.max_tiers
            ));
        }
        if segments.len() < r.min_tiers {
            errors.push(format!(
                "has {} tier(s); {} needs at least {}",
                segments.len(),
                self.name,
                r.min_tiers
            ));
        }
        let len = full_code.chars().count();
        if len > r.max_full_code_length {
            errors.push(format!(
                "full code is {len} characters; {} allows at most {}",
                self.name, r.max_full_code_length
            ));
        }
        if let Some(max) = r.max_item_name_length.filter(|&max| len > max) {
            errors.push(format!(
                "full code is {len} characters; {} names the item by it and allows at most {max} \
                 characters in a name",
                self.name
            ));
        }
        for seg in &segments {
            let n = seg.chars().count();
            if n > r.max_segment_length {
                errors.push(format!(
                    "segment '{seg}' is {n} characters; {} allows at most {} per segment",
                    self.name, r.max_segment_length
                ));
            }
        }
        let mut bad: Vec<char> = full_code
            .chars()
            .filter(|&c| {
                c != delimiter && !c.is_ascii_alphanumeric() && !r.extra_characters.contains(c)
            })
            .collect();
        bad.sort_unstable();
        bad.dedup();
        if !bad.is_empty() {
            let shown: String = bad.iter().map(|c| format!("'{c}' ")).collect();
            errors.push(format!(
                "contains characters {} does not accept: {}",
                self.name,
                shown.trim_end()
            ));
        }
        let dlen = description.chars().count();
        if dlen > r.max_description_length && r.description_overflow == DescriptionOverflow::Refuse
        {
            errors.push(format!(
                "description is {dlen} characters; {} allows at most {}",
                self.name, r.max_description_length
            ));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profiles_load_with_the_spec_ids() {
        let ids: Vec<String> = ErpProfile::builtin().into_iter().map(|p| p.id).collect();
        assert_eq!(
            ids,
            [
                "tryton",
                "quickbooks_desktop",
                "xero",
                "sage_300_cre",
                "viewpoint_vista",
                "viewpoint_spectrum",
                "sage_intacct",
                "cmic",
                "acumatica"
            ]
        );
        let creators: Vec<String> = ErpProfile::builtin()
            .into_iter()
            .filter(|p| p.create_cost_codes)
            .map(|p| p.id)
            .collect();
        assert_eq!(creators, ["tryton", "quickbooks_desktop", "xero"]);
        assert!(
            ErpProfile::find("quickbooks_desktop")
                .unwrap()
                .rules
                .income_account_required
        );
        assert!(
            !ErpProfile::find("tryton")
                .unwrap()
                .rules
                .income_account_required
        );
        assert_eq!(
            ErpProfile::find("cmic").unwrap().rules.delimiters,
            vec!['-']
        );
    }

    #[test]
    fn rules_name_each_break() {
        let xero = ErpProfile::find("xero").unwrap();
        assert!(xero.check_code("01-100", "Concrete", '-').is_empty());
        let long = "1234567890-1234567890-1234567890";
        let errs = xero.check_code(long, "x", '-');
        assert_eq!(
            errs,
            vec!["full code is 32 characters; Xero allows at most 30"]
        );
        let qb = ErpProfile::find("quickbooks_desktop").unwrap();
        let errs = qb.check_code("01-1:0", "x", '-');
        assert_eq!(
            errs,
            vec!["contains characters QuickBooks Desktop does not accept: ':'"]
        );
        // Each tier's item is named by its full code: 31 characters fit, 32 do not.
        let thirty_one = "0123456789-0123456789-012345678";
        assert!(qb.check_code(thirty_one, "x", '-').is_empty());
        assert_eq!(
            qb.check_code(&format!("{thirty_one}9"), "x", '-'),
            vec![
                "full code is 32 characters; QuickBooks Desktop names the item by it and allows \
                 at most 31 characters in a name"
            ]
        );
        let intacct = ErpProfile::find("sage_intacct").unwrap();
        assert_eq!(intacct.check_code("01", "x", '~').len(), 2);
    }
}

/// A code that breaks a profile's rules, with every rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InvalidCode {
    pub id: i64,
    pub full_code: String,
    pub errors: Vec<String>,
}

impl ErpProfile {
    /// Checks `(id, full_code, description)` triples; returns only the codes that break a rule.
    pub fn invalid_codes<'a>(
        &self, codes: impl IntoIterator<Item = (i64, &'a str, &'a str)>, delimiter: char,
    ) -> Vec<InvalidCode> {
        codes
            .into_iter()
            .filter_map(|(id, full, desc)| {
                let errors = self.check_code(full, desc, delimiter);
                (!errors.is_empty()).then(|| InvalidCode {
                    id,
                    full_code: full.to_owned(),
                    errors,
                })
            })
            .collect()
    }

    /// The note an item carries when its description will be cut for this ERP, if it will.
    pub fn truncation_limit(&self) -> Option<usize> {
        (self.rules.description_overflow == DescriptionOverflow::Truncate)
            .then_some(self.rules.max_description_length)
    }
}
