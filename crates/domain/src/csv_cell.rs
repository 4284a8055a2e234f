//! Cells of the CSV files Costbridge writes, made safe to open in a spreadsheet.
//! A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
//! LibreOffice and Sheets as a formula (`=HYPERLINK(…)`, `+cmd|…`), so it is written with a
//! leading `'` (OWASP's advice), which spreadsheets show as text. Our importer undoes exactly
//! that, so an exported file imports back unchanged.
use std::borrow::Cow;

/// Written first in every CSV file a person downloads from the pages (the codes' export, the
/// audit log): without it Excel on Windows reads the file in the machine's code page, so
/// `Béton armé` shows as `BÃ©ton armÃ©`, and a file saved back from there imports as changed
/// codes. Not in what programs read (the API's and the CLI's export, the file connector's
/// CSV). Our importer skips it.
pub const UTF8_BOM: &str = "\u{feff}";

/// Whether a spreadsheet would take `cell` as a formula: it starts with a trigger, or it is a
/// `'` followed by such a cell (which [`restore`] would otherwise strip on the way back).
fn needs_guard(cell: &str) -> bool {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => true,
        Some(b'\'') => needs_guard(&cell[1..]),
        _ => false,
    }
}

/// A cell ready to write, borrowed unless it needed the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeCell<'a>(Cow<'a, str>);

impl AsRef<[u8]> for SafeCell<'_> {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl AsRef<str> for SafeCell<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The cell as every CSV writer of the product writes it.
pub fn neutralise(cell: &str) -> SafeCell<'_> {
    if needs_guard(cell) {
        SafeCell(Cow::Owned(format!("'{cell}")))
    } else {
        SafeCell(Cow::Borrowed(cell))
    }
}

/// A whole row of borrowed cells, for `csv::Writer::write_record`.
pub fn neutralise_row<const N: usize>(cells: [&str; N]) -> [SafeCell<'_>; N] {
    cells.map(neutralise)
}

/// The cell as it was before [`neutralise`]: one leading `'` goes when what follows would have
/// been guarded; anything else is left as it is.
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_guard(rest) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(s: &str) -> String {
        AsRef::<str>::as_ref(&neutralise(s)).to_owned()
    }

    #[test]
    fn formulas_are_guarded_and_text_is_not() {
        for (cell, written) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=x", "''=x"),
            ("01-100", "01-100"),
            ("Concrete - forms", "Concrete - forms"),
            ("'quoted'", "'quoted'"),
            ("", ""),
        ] {
            assert_eq!(n(cell), written, "{cell:?}");
        }
    }

    #[test]
    fn restore_undoes_neutralise() {
        for cell in [
            "=1+1", "-2+3", "'=x", "''-y", "'quoted", "plain", "", "'", "-", "'-",
        ] {
            assert_eq!(restore(&n(cell)), cell, "{cell:?}");
        }
    }

    proptest! {
        /// Any text survives the round trip, and nothing written starts a formula.
        #[test]
        fn round_trip_and_never_a_formula(cell in "['=+@\\-\t\ra-z ]{0,6}") {
            let written = n(&cell);
            prop_assert_eq!(restore(&written), cell.as_str());
            prop_assert!(!matches!(written.as_bytes().first(), Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')));
        }
    }
}
