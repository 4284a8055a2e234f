//! The cost code CSV format (`full_code,description,active`), shared by the API and the CLI.
use costbridge_domain::csv_cell::{UTF8_BOM, neutralise_row, restore};
use costbridge_storage::import::{ImportRow, RowError};
use std::borrow::Cow;
use std::collections::BTreeMap;

pub const HEADER: [&str; 3] = ["full_code", "description", "active"];

#[derive(Debug)]
pub enum CsvError {
    /// Problems with the file as a whole, by field (`file`).
    File(BTreeMap<String, Vec<String>>),
    Rows(Vec<RowError>),
}

fn file_error(message: String) -> CsvError {
    CsvError::File(BTreeMap::from([("file".to_owned(), vec![message])]))
}

/// Reads the whole file; `progress` is told how many bytes have been read so far.
pub fn parse(bytes: &[u8], mut progress: impl FnMut(u64)) -> Result<Vec<ImportRow>, CsvError> {
    let bytes = bytes.strip_prefix(UTF8_BOM.as_bytes()).unwrap_or(bytes);
    let total = bytes.len() as u64;
    if let Err(e) = std::str::from_utf8(bytes) {
        let line = line_feeds_only(&bytes[..e.valid_up_to()])
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        return Err(file_error(format!(
            "is not UTF-8 text: invalid byte at line {line} (byte {}); save the file as UTF-8 CSV",
            e.valid_up_to() + 1
        )));
    }
    let bytes = line_feeds_only(bytes);
    let bytes: &[u8] = &bytes;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .delimiter(delimiter(bytes))
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| file_error(format!("has no readable header row: {e}")))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let (Some(code_col), Some(desc_col)) = (col("full_code"), col("description")) else {
        let missing: Vec<&str> = ["full_code", "description"]
            .into_iter()
            .filter(|c| col(c).is_none())
            .collect();
        return Err(file_error(format!(
            "is missing the column(s) {}; the header must be {}",
            missing.join(", "),
            HEADER.join(",")
        )));
    };
    let active_col = col("active");
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut record = csv::StringRecord::new();
    for i in 0.. {
        let read = reader.read_record(&mut record);
        // The line the row starts on: a quoted field may hold line breaks.
        let line = record.position().map_or(i + 2, |p| p.line() as usize);
        match read {
            Ok(false) => break,
            // Excel leaves rows of only commas below the data where cells were once used.
            Ok(true) if record.iter().all(|f| f.trim().is_empty()) => {}
            Ok(true) if record.len() != headers.len() => errors.push(RowError {
                row: line,
                full_code: record.get(code_col).unwrap_or("").to_owned(),
                errors: vec![if record.iter().any(|f| f.contains('\n')) {
                    // The count alone ("has 2 fields") hid the cause: a stray quote made the
                    // following lines part of this row.
                    "a quote (\") opens a field in this row that is not closed where the row \
                     ends, so the lines after it were read into this row; close the quote, or \
                     double it (\"\") to keep it as text"
                        .to_owned()
                } else {
                    format!(
                        "has {} fields; the header has {}",
                        record.len(),
                        headers.len()
                    )
                }],
            }),
            Ok(true) => rows.push(ImportRow {
                line,
                full_code: cell(&record, code_col),
                description: cell(&record, desc_col),
                active: active_col
                    .and_then(|c| record.get(c))
                    .unwrap_or("")
                    .to_owned(),
            }),
            Err(e) => errors.push(RowError {
                row: line,
                full_code: String::new(),
                errors: vec![e.to_string()],
            }),
        }
        if i % 4096 == 0 {
            progress(reader.position().byte());
        }
    }
    progress(total);
    if !errors.is_empty() {
        return Err(CsvError::Rows(errors));
    }
    if rows.is_empty() {
        return Err(file_error("has no data rows".into()));
    }
    Ok(rows)
}

/// Every line ending as a line feed. The CSV reader ends records on `\r`, `\n` and `\r\n`
/// alike, but counts lines by the line feeds it has passed when a record starts: with old Mac
/// endings (Excel's "Macintosh Comma Separated", `\r` alone) every row's error said "Row 1",
/// and with Windows endings (`\r\n`) each said the row above its own.
fn line_feeds_only(bytes: &[u8]) -> Cow<'_, [u8]> {
    if !bytes.contains(&b'\r') {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {}
            b'\r' => out.push(b'\n'),
            _ => out.push(b),
        }
    }
    Cow::Owned(out)
}

/// The separator the header row uses: Excel where the decimal mark is a comma saves "CSV" with
/// `;`, and "Text (Tab delimited)" uses tabs; read as commas, their header is one column.
fn delimiter(bytes: &[u8]) -> u8 {
    let header = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    [b',', b';', b'\t']
        .into_iter()
        .find(|d| header.contains(d))
        .unwrap_or(b',')
}

/// A field as typed, without the guard [`render`] put before a formula-like value.
fn cell(record: &csv::StringRecord, col: usize) -> String {
    restore(record.get(col).unwrap_or("").trim())
        .trim()
        .to_owned()
}

/// A CSV file as a download named `filename`: the API's export, the codes page's and the audit
/// log's answer alike.
pub fn attachment(filename: &str, body: impl Into<axum::body::Body>) -> axum::response::Response {
    download(filename, "text/csv; charset=utf-8", body)
}

/// An export job's file as a download: CSV as text, IIF as the bytes QuickBooks imports. Sent
/// in 64 KiB chunks as it is read: a 100,000-code file is tens of megabytes, and each reader
/// fetching it held it whole.
pub fn export_file(name: &str, file: tokio::fs::File, len: u64) -> axum::response::Response {
    use tokio::io::AsyncReadExt;
    let content_type = if name.ends_with(".csv") {
        "text/csv; charset=utf-8"
    } else {
        "application/octet-stream"
    };
    // The file until it ends or fails (a failure ends the body: the client sees a cut download).
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut chunk = vec![0; 64 * 1024];
        match file.read(&mut chunk).await {
            Ok(0) => None,
            Ok(n) => {
                chunk.truncate(n);
                Some((Ok(axum::body::Bytes::from(chunk)), Some(file)))
            }
            Err(e) => {
                tracing::warn!(error = %e, "an export file's download was cut short");
                Some((Err(e), None))
            }
        }
    });
    // The length stated, so a client (or a proxy) can tell a download cut short.
    let mut res = download(name, content_type, axum::body::Body::from_stream(chunks));
    res.headers_mut()
        .insert(axum::http::header::CONTENT_LENGTH, len.into());
    res
}

/// A file as a download named `filename` (a name Costbridge made: no quote to escape).
pub fn download(
    filename: &str, content_type: &str, body: impl Into<axum::body::Body>,
) -> axum::response::Response {
    use axum::http::header;
    let disposition = format!("attachment; filename=\"{filename}\"");
    axum::response::IntoResponse::into_response((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body.into(),
    ))
}

/// The list as CSV; a value a spreadsheet would run as a formula gets a leading `'`. No BOM:
/// the API's and the CLI's readers are programs (the page's download adds one for Excel).
pub fn render(codes: &[(String, String, bool)]) -> String {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(codes.len() * 48));
    let _ = w.write_record(HEADER);
    for (full, desc, active) in codes {
        let _ = w.write_record(neutralise_row([
            full.as_str(),
            desc.as_str(),
            if *active { "true" } else { "false" },
        ]));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_say_why() {
        let CsvError::File(f) = parse(b"full_code,description\n01,Caf\xe9\n", |_| {}).unwrap_err()
        else {
            panic!()
        };
        assert!(f["file"][0].contains("line 2"), "{f:?}");
        let CsvError::File(f) = parse(b"code,description\n01,x\n", |_| {}).unwrap_err() else {
            panic!()
        };
        assert!(f["file"][0].contains("full_code"), "{f:?}");
        let CsvError::Rows(r) =
            parse(b"full_code,description,active\n01,x,true\n02,y\n", |_| {}).unwrap_err()
        else {
            panic!()
        };
        assert_eq!(r[0].row, 3);
        assert_eq!(r[0].errors, ["has 2 fields; the header has 3"]);
        // A stray quote swallows the lines after it: said as that, on the row where it is.
        let CsvError::Rows(r) = parse(
            b"full_code,description,active\n01,x,true\n02,\"6 inch pipe,true\n03,z,true\n",
            |_| {},
        )
        .unwrap_err() else {
            panic!()
        };
        assert_eq!(r[0].row, 3);
        assert!(
            r[0].errors[0].starts_with("a quote (\") opens a field"),
            "{r:?}"
        );
        // A line break inside quotes is a field's, and later rows keep their own lines.
        let rows = parse(
            b"full_code,description,active\n01,\"two\nlines\",true\n02,y,true\n",
            |_| {},
        )
        .unwrap();
        assert_eq!((rows[1].full_code.as_str(), rows[1].line), ("02", 4));
    }

    #[test]
    fn rows_of_only_commas_are_skipped() {
        let rows = parse(
            b"full_code,description,active\n01,x,true\n,,\n02,y,false\n , ,\n,,\n,\n",
            |_| {},
        )
        .unwrap();
        let read: Vec<(&str, usize)> = rows
            .iter()
            .map(|r| (r.full_code.as_str(), r.line))
            .collect();
        assert_eq!(read, [("01", 2), ("02", 4)]);
        let CsvError::File(f) = parse(b"full_code,description\n,\n,\n", |_| {}).unwrap_err() else {
            panic!()
        };
        assert_eq!(f["file"], ["has no data rows"]);
    }

    #[test]
    fn semicolons_and_tabs_separate_columns_when_the_header_has_no_comma() {
        for file in [
            "full_code;description;active\n01;General, misc;true\n02;\"Site; yard\";false\n",
            "full_code\tdescription\tactive\n01\tGeneral, misc\ttrue\n02\tSite; yard\tfalse\n",
        ] {
            let rows = parse(file.as_bytes(), |_| {}).unwrap();
            let read: Vec<(&str, &str, &str)> = rows
                .iter()
                .map(|r| {
                    (
                        r.full_code.as_str(),
                        r.description.as_str(),
                        r.active.as_str(),
                    )
                })
                .collect();
            assert_eq!(
                read,
                [
                    ("01", "General, misc", "true"),
                    ("02", "Site; yard", "false")
                ],
                "{file:?}"
            );
        }
        // A comma header keeps commas, whatever the cells hold.
        let rows = parse(b"full_code,description\n01,a;b\n", |_| {}).unwrap();
        assert_eq!(rows[0].description, "a;b");
    }

    #[test]
    fn carriage_returns_alone_end_lines() {
        let CsvError::Rows(r) = parse(
            b"full_code,description,active\r01,x,true\r02,y,true\r03,z\r",
            |_| {},
        )
        .unwrap_err() else {
            panic!()
        };
        assert_eq!((r[0].row, r[0].full_code.as_str()), (4, "03"));
        let rows = parse(
            b"full_code,description\r\n01,x\r\n02,\"two\rlines\"\r\n03,z\r\n",
            |_| {},
        )
        .unwrap();
        let read: Vec<(&str, &str, usize)> = rows
            .iter()
            .map(|r| (r.full_code.as_str(), r.description.as_str(), r.line))
            .collect();
        assert_eq!(
            read,
            [("01", "x", 2), ("02", "two\nlines", 3), ("03", "z", 5)]
        );
    }

    #[test]
    fn round_trip() {
        let codes = vec![
            ("01".to_owned(), "General, \"misc\"".to_owned(), true),
            ("01-100".to_owned(), "Fees".to_owned(), false),
        ];
        let file = render(&codes);
        assert!(file.starts_with("full_code,"), "{file:?}");
        // With the BOM the pages' download adds, and without it.
        let rows = parse(format!("\u{feff}{file}").as_bytes(), |_| {}).unwrap();
        let bare = parse(file.as_bytes(), |_| {}).unwrap();
        assert_eq!(bare[0].full_code, rows[0].full_code);
        assert_eq!(rows[0].description, "General, \"misc\"");
        assert_eq!(
            (
                rows[1].full_code.as_str(),
                rows[1].active.as_str(),
                rows[1].line
            ),
            ("01-100", "false", 3)
        );
    }
}
