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
    /// The only characters the ERP can keep in a description, when it is not Unicode.
    #[serde(default)]
    pub description_characters: Option<Charset>,
}

/// A character set an ERP keeps its texts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Charset {
    /// QuickBooks Desktop's: its IIF files are read as the Windows (ANSI) code page of a
    /// Western installation, and it stores no other character.
    #[serde(rename = "windows-1252")]
    Windows1252,
}

impl Charset {
    pub fn label(self) -> &'static str {
        match self {
            Charset::Windows1252 => "Windows-1252",
        }
    }

    /// `c`'s byte in this character set, if it has one.
    pub fn byte(self, c: char) -> Option<u8> {
        match self {
            Charset::Windows1252 => windows_1252(c),
        }
    }
}

/// The 27 characters Windows-1252 puts in 0x80..=0x9F (where Latin-1 has control codes), in
/// byte order; 0x81, 0x8D, 0x8F, 0x90 and 0x9D hold none.
const CP1252_HIGH: [(u8, char); 27] = [
    (0x80, '€'),
    (0x82, '‚'),
    (0x83, 'ƒ'),
    (0x84, '„'),
    (0x85, '…'),
    (0x86, '†'),
    (0x87, '‡'),
    (0x88, 'ˆ'),
    (0x89, '‰'),
    (0x8A, 'Š'),
    (0x8B, '‹'),
    (0x8C, 'Œ'),
    (0x8E, 'Ž'),
    (0x91, '\u{2018}'),
    (0x92, '\u{2019}'),
    (0x93, '\u{201C}'),
    (0x94, '\u{201D}'),
    (0x95, '•'),
    (0x96, '–'),
    (0x97, '—'),
    (0x98, '˜'),
    (0x99, '™'),
    (0x9A, 'š'),
    (0x9B, '›'),
    (0x9C, 'œ'),
    (0x9E, 'ž'),
    (0x9F, 'Ÿ'),
];

fn windows_1252(c: char) -> Option<u8> {
    match u32::from(c) {
        // ASCII and Latin-1's printable upper half are the same bytes.
        n @ (0..=0x7F | 0xA0..=0xFF) => u8::try_from(n).ok(),
        _ => CP1252_HIGH.iter().find(|&&(_, h)| h == c).map(|&(b, _)| b),
    }
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

    /// Why this ERP cannot store `description` as written, when it keeps texts in a
    /// character set that lacks some of its characters (each named, with its code point).
    pub fn unstorable(&self, description: &str) -> Option<String> {
        let set = self.rules.description_characters?;
        let mut bad: Vec<char> = description
            .chars()
            .filter(|&c| set.byte(c).is_none())
            .collect();
        if bad.is_empty() {
            return None;
        }
        bad.sort_unstable();
        bad.dedup();
        let shown: Vec<String> = bad
            .iter()
            .map(|&c| format!("'{c}' (U+{:04X})", u32::from(c)))
            .collect();
        Some(format!(
            "description has characters {} cannot store (it keeps text in {}): {}; replace them",
            self.name,
            set.label(),
            shown.join(" ")
        ))
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
        errors.extend(self.unstorable(description));
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

    /// QuickBooks Desktop keeps text in Windows-1252: what a spreadsheet's autocorrect and a
    /// French-Canadian site write goes in; what that set lacks is refused, each named.
    #[test]
    fn quickbooks_takes_only_windows_1252_descriptions() {
        let qb = ErpProfile::find("quickbooks_desktop").unwrap();
        let fine = "Béton – “phase 1”, l’œuvre… 5 € ™ ÿ";
        assert!(qb.check_code("01", fine, '-').is_empty());
        assert_eq!(
            qb.check_code("01", "Check ✓ done ✓ 😀", '-'),
            vec![
                "description has characters QuickBooks Desktop cannot store (it keeps text in \
                 Windows-1252): '✓' (U+2713) '😀' (U+1F600); replace them"
            ]
        );
        // Windows-1252's bytes, where Latin-1 would write control codes or Unicode has no byte.
        let set = Charset::Windows1252;
        let bytes: Vec<Option<u8>> = ['A', 'é', '–', '€', '\u{2019}', 'Ÿ', '\u{81}', '✓']
            .into_iter()
            .map(|c| set.byte(c))
            .collect();
        assert_eq!(
            bytes,
            [
                Some(b'A'),
                Some(0xE9),
                Some(0x96),
                Some(0x80),
                Some(0x92),
                Some(0x9F),
                None,
                None
            ]
        );
        // Unicode ERPs take anything.
        let xero = ErpProfile::find("xero").unwrap();
        assert!(xero.check_code("01", "Check ✓", '-').is_empty());
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
