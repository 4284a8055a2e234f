//! Work breakdown structure values: a code segment, a description, full codes and their natural
//! order. Parsing here is the only way to get these types, so storage never sees a bad value.
use thiserror::Error;

/// docs/rules.md §2: a cost code has at most five tiers.
pub const MAX_TIERS: usize = 5;
pub const DEFAULT_DELIMITER: char = '-';
/// Generous upper bounds; each ERP profile narrows them.
pub const MAX_SEGMENT_LEN: usize = 40;
pub const MAX_DESCRIPTION_LEN: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WbsError {
    #[error("is required")]
    Empty,
    #[error("is longer than {0} characters")]
    TooLong(usize),
    #[error("{}", control_character(*.0, true))]
    ControlCharacter(u32),
    #[error("contains the segment delimiter '{0}'")]
    ContainsDelimiter(char),
    #[error("has leading or trailing spaces")]
    Untrimmed,
    #[error("would be tier {0}; at most {MAX_TIERS} tiers are allowed")]
    TooDeep(usize),
}

/// Named as people know them: a line break mostly comes from Alt+Enter in an Excel cell, and
/// "U+000A" meant nothing to the person who has to find it. Every typed text says it so;
/// where a space is no fix (an email), the advice is to remove it.
pub fn control_character(c: u32, spaces_allowed: bool) -> String {
    let fix = if spaces_allowed {
        "replace it with a space"
    } else {
        "remove it"
    };
    match c {
        0x0A | 0x0D => format!("contains a line break; {fix}"),
        0x09 => format!("contains a tab; {fix}"),
        _ => format!("contains an invisible control character (U+{c:04X}); remove it"),
    }
}

fn check_text(s: &str, max: usize) -> Result<(), WbsError> {
    if s.trim().is_empty() {
        return Err(WbsError::Empty);
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(WbsError::ControlCharacter(c as u32));
    }
    if s.chars().count() > max {
        return Err(WbsError::TooLong(max));
    }
    if s.trim() != s {
        return Err(WbsError::Untrimmed);
    }
    Ok(())
}

/// One tier's own code, e.g. `100` in `01-100`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSegment(String);

impl CodeSegment {
    pub fn parse(s: &str, delimiter: char) -> Result<Self, WbsError> {
        check_text(s, MAX_SEGMENT_LEN)?;
        if s.contains(delimiter) {
            return Err(WbsError::ContainsDelimiter(delimiter));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub fn parse(s: &str) -> Result<Self, WbsError> {
        check_text(s, MAX_DESCRIPTION_LEN)?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The full code of a segment under a parent (whose full code and tier are given).
pub fn full_code(
    parent: Option<(&str, usize)>, code: &CodeSegment, delimiter: char,
) -> Result<(String, usize), WbsError> {
    match parent {
        None => Ok((code.0.clone(), 1)),
        Some((_, tier)) if tier >= MAX_TIERS => Err(WbsError::TooDeep(tier + 1)),
        Some((pfull, tier)) => Ok((format!("{pfull}{delimiter}{}", code.0), tier + 1)),
    }
}

/// Splits a full code into its segments, checking each and the depth.
pub fn split_full_code(full: &str, delimiter: char) -> Result<Vec<CodeSegment>, WbsError> {
    let parts: Vec<&str> = full.split(delimiter).collect();
    if parts.len() > MAX_TIERS {
        return Err(WbsError::TooDeep(parts.len()));
    }
    parts
        .into_iter()
        .map(|p| CodeSegment::parse(p, delimiter))
        .collect()
}

/// `full` with the leading zeros of its all-digit segments dropped (`01-100` → `1-100`; `00`
/// → `0`; `A01` stays): what a spreadsheet keeps of a code cell it read as a number.
pub fn numbers_key(full: &str, delimiter: char) -> String {
    let mut out = String::with_capacity(full.len());
    for (i, segment) in full.split(delimiter).enumerate() {
        if i > 0 {
            out.push(delimiter);
        }
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            let bare = segment.trim_start_matches('0');
            out.push_str(if bare.is_empty() { "0" } else { bare });
        } else {
            out.push_str(segment);
        }
    }
    out
}

/// A key whose plain byte order is the natural order of full codes: digit runs compare by
/// value (`2` before `10`) and a parent sorts right before its children. Stored beside each
/// code so the database can page 100,000 codes in order without sorting them in memory.
pub fn sort_key(full: &str, delimiter: char) -> String {
    let mut out = String::with_capacity(full.len() + 8);
    for (i, segment) in full.split(delimiter).enumerate() {
        if i > 0 {
            // Below every printable character, so "01" < "01-100" < "01A" < "02".
            out.push('\u{1}');
        }
        let mut chars = segment.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() {
                let mut digits = String::new();
                while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(d);
                    chars.next();
                }
                let value = digits.trim_start_matches('0');
                // Length first, so a longer number sorts after a shorter one.
                out.push_str(&format!("{:02}", value.len()));
                out.push_str(value);
            } else {
                out.push(c);
                chars.next();
            }
        }
    }
    out
}

/// What a spreadsheet made of a code it took for a date or a number, when `full` has that
/// shape: Excel opens `3-4` as 4 March and saves `4-Mar`, `03-30-00` as `3/30/2000`, `01.10.20`
/// (European) as `01.10.2020`, and `1E5` as `1.00E+05`. Such a code is valid by every rule, so
/// an import would create it as new. Month names are matched as Excel writes them (`Mar`, not
/// `MAR`), whatever the delimiter: Excel writes them with `-`, the default delimiter. A date of
/// digits is matched only when its separator (`/`, `.`) is not the company's delimiter, and a
/// number only as Excel writes it, with a decimal point (`1.00E+05`, never `2E-100`).
pub fn spreadsheet_made(full: &str, delimiter: char) -> Option<&'static str> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    let parts: Vec<&str> = full.split(['-', ' ']).collect();
    let months = parts.iter().filter(|p| MONTHS.contains(p)).count();
    if (2..=3).contains(&parts.len())
        && months == 1
        && parts.iter().all(|p| MONTHS.contains(p) || digits(p, 4))
    {
        return Some("a date");
    }
    for sep in ['/', '.'] {
        let parts: Vec<&str> = full.split(sep).collect();
        if sep != delimiter
            && parts.len() == 3
            && digits(parts[0], 2)
            && digits(parts[1], 2)
            && (digits(parts[2], 2) && sep == '/' || parts[2].len() == 4 && digits(parts[2], 4))
        {
            return Some("a date");
        }
    }
    let upper = full.to_ascii_uppercase();
    if let Some((mantissa, exponent)) = upper.split_once("E+").or_else(|| upper.split_once("E-"))
        && digits(exponent, 3)
        && mantissa
            .split_once('.')
            .is_some_and(|(i, f)| digits(i, 15) && digits(f, 15))
    {
        return Some("a number in scientific notation");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn segments_reject_bad_text() {
        assert_eq!(CodeSegment::parse("", '-'), Err(WbsError::Empty));
        assert_eq!(CodeSegment::parse("   ", '-'), Err(WbsError::Empty));
        assert_eq!(
            CodeSegment::parse("1\u{7}", '-'),
            Err(WbsError::ControlCharacter(7))
        );
        assert_eq!(
            CodeSegment::parse("1-2", '-'),
            Err(WbsError::ContainsDelimiter('-'))
        );
        assert_eq!(CodeSegment::parse(" 1", '-'), Err(WbsError::Untrimmed));
        assert_eq!(
            CodeSegment::parse(&"9".repeat(41), '-'),
            Err(WbsError::TooLong(40))
        );
        assert_eq!(CodeSegment::parse("100", '-').unwrap().as_str(), "100");
        assert!(Description::parse("Concrete, cast in place").is_ok());
        assert_eq!(
            Description::parse("a\nb"),
            Err(WbsError::ControlCharacter(10))
        );
    }

    #[test]
    fn numbers_key_drops_the_zeros_a_spreadsheet_drops() {
        for (a, b) in [
            ("01", "1"),
            ("01-100", "1-100"),
            ("00", "0"),
            ("1.010", "001.10"),
        ] {
            let delimiter = if a.contains('.') { '.' } else { '-' };
            assert_eq!(
                numbers_key(a, delimiter),
                numbers_key(b, delimiter),
                "{a} {b}"
            );
        }
        assert_ne!(numbers_key("A01", '-'), numbers_key("A1", '-'));
        assert_ne!(numbers_key("01-10", '-'), numbers_key("1-100", '-'));
    }

    #[test]
    fn control_characters_are_named_in_words() {
        let said = |s: &str| Description::parse(s).unwrap_err().to_string();
        assert_eq!(
            said("a\nb"),
            "contains a line break; replace it with a space"
        );
        assert_eq!(
            said("a\r\nb"),
            "contains a line break; replace it with a space"
        );
        assert_eq!(said("a\tb"), "contains a tab; replace it with a space");
        assert_eq!(
            said("a\u{7}b"),
            "contains an invisible control character (U+0007); remove it"
        );
    }

    #[test]
    fn full_codes_and_depth() {
        let seg = CodeSegment::parse("100", '-').unwrap();
        assert_eq!(full_code(None, &seg, '-').unwrap(), ("100".into(), 1));
        assert_eq!(
            full_code(Some(("01", 1)), &seg, '-').unwrap(),
            ("01-100".into(), 2)
        );
        assert_eq!(
            full_code(Some(("1-2-3-4-5", 5)), &seg, '-'),
            Err(WbsError::TooDeep(6))
        );
        assert_eq!(
            split_full_code("1-2-3-4-5-6", '-'),
            Err(WbsError::TooDeep(6))
        );
        assert_eq!(split_full_code("01--2", '-'), Err(WbsError::Empty));
    }

    #[test]
    fn natural_order() {
        let mut codes = vec!["10", "2", "01-100", "01", "01-20", "01A", "02", "1"];
        codes.sort_by_key(|c| (sort_key(c, '-'), c.to_string()));
        assert_eq!(
            codes,
            vec!["01", "1", "01-20", "01-100", "01A", "02", "2", "10"]
        );
    }

    proptest! {
        #[test]
        fn numbers_sort_by_value(a in 0u64..1_000_000, b in 0u64..1_000_000) {
            let (ka, kb) = (sort_key(&a.to_string(), '-'), sort_key(&b.to_string(), '-'));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
        }

        #[test]
        fn children_follow_their_parent(p in "[0-9A-Z]{1,6}", c in "[0-9A-Z]{1,6}", s in "[0-9A-Z]{1,6}") {
            // Every descendant of `p` sorts between `p` and any later sibling of `p`.
            let parent = sort_key(&p, '-');
            let child = sort_key(&format!("{p}-{c}"), '-');
            let sibling = sort_key(&s, '-');
            prop_assert!(parent < child);
            if sibling > parent && !sibling.starts_with(&parent) {
                prop_assert!(child < sibling);
            }
        }
    }

    #[test]
    fn codes_a_spreadsheet_made_into_dates_or_numbers_are_told() {
        for (made, what) in [
            ("4-Mar", "a date"),
            ("Mar-04", "a date"),
            ("4-Mar-03", "a date"),
            ("3/30/2000", "a date"),
            ("01.10.2020", "a date"),
            ("1.00E+05", "a number in scientific notation"),
            ("1.2E-07", "a number in scientific notation"),
        ] {
            assert_eq!(spreadsheet_made(made, '-'), Some(what), "{made}");
        }
        for typed in [
            "03-30-00", "4-MAR", "01-100", "Mar", "3-4", "EQUIP-1", "01.10", "1E", "2E-100",
        ] {
            assert_eq!(spreadsheet_made(typed, '-'), None, "{typed}");
        }
        // A company whose delimiter is the date's separator types such codes itself.
        assert_eq!(spreadsheet_made("3/30/2000", '/'), None);
        assert_eq!(spreadsheet_made("01.10.2020", '.'), None);
    }
}
