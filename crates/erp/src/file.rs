//! The file connector: each export job becomes one file, QuickBooks Desktop IIF or CSV. The file
//! is named after the job and written atomically (temporary file, fsync, rename), so a retried
//! job replaces its file instead of adding a second one.
use crate::{
    Connector, ConnectorError, Env, ExportContext, Field, FieldErrors, GlAccount, Input,
    LineResult, Lines, fit_description,
};
use costbridge_domain::csv_cell::neutralise_row;
use costbridge_domain::profile::Charset;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Iif,
    Csv,
}

/// A folder that receives one file per export job.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// A folder inside the company's export folder (`.` is that folder itself).
    #[schema(value_type = String)]
    pub directory: PathBuf,
    #[schema(inline)]
    pub format: FileFormat,
    /// The accounts the approver picks from.
    #[serde(default)]
    #[schema(inline)]
    pub gl_accounts: Vec<GlAccount>,
}

/// The file connector: the folder of its settings, inside the company's own folder (or why
/// it is not).
pub struct Folder {
    settings: FileSettings,
    dir: Result<PathBuf, String>,
}

/// Why a folder is refused, for the field and for a failed test or export.
const OUTSIDE: &str =
    "must be a folder inside the company's export folder (a relative path without '..')";

impl Connector for Folder {
    type Settings = FileSettings;
    const KIND: &'static str = "file";
    const LABEL: &'static str = "File (QuickBooks IIF or CSV in a folder)";
    const FIELDS: &'static [Field] = &[
        Field::new("directory", "Folder for export files", Input::Text),
        Field::new(
            "format",
            "Format",
            Input::Choice(&[("iif", "QuickBooks Desktop IIF"), ("csv", "CSV")]),
        ),
        Field::new("gl_accounts", "GL accounts", Input::GlAccounts),
    ];
    /// A file holds the whole job (one file per job).
    const BATCH: usize = usize::MAX;

    fn delivered_to(settings: &FileSettings, job: i64) -> Option<String> {
        Some(file_name(job, settings.format))
    }

    fn delivery_folder(settings: &FileSettings, env: &Env) -> Option<PathBuf> {
        inside(&env.files, &settings.directory)
    }

    /// QuickBooks matches an IIF file's lines by its own rules (31-character names, an income
    /// account on every item): written under another ERP's, the file was refused on import.
    fn profile(settings: &FileSettings) -> Option<&'static str> {
        match settings.format {
            FileFormat::Iif => Some("quickbooks_desktop"),
            FileFormat::Csv => None,
        }
    }

    fn check(s: &FileSettings, env: &Env, errors: &mut FieldErrors) {
        if s.directory.as_os_str().is_empty() {
            errors.add("directory", "is required");
        } else if inside(&env.files, &s.directory).is_none() {
            errors.add("directory", OUTSIDE);
        }
        errors.gl_accounts(&s.gl_accounts);
    }

    fn new(settings: &FileSettings, env: &Env) -> Self {
        Folder {
            settings: settings.clone(),
            // Checked again at each use: a symlink may have appeared since the settings were saved.
            dir: inside(&env.files, &settings.directory).ok_or_else(|| {
                format!(
                    "The export folder {} {OUTSIDE}",
                    settings.directory.display()
                )
            }),
        }
    }

    fn settings_gl_accounts(&self) -> &[GlAccount] {
        &self.settings.gl_accounts
    }

    async fn test(&self) -> (bool, String) {
        match &self.dir {
            Ok(dir) => test(dir).await,
            Err(why) => (false, why.clone()),
        }
    }

    async fn export(
        &self, ctx: &ExportContext, lines: &dyn Lines,
    ) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
        let dir = self
            .dir
            .as_ref()
            .map_err(|why| ConnectorError::Unavailable(why.clone()))?;
        export(dir, self.settings.format, ctx, lines).await
    }
}

/// `directory` (relative to `folder`, or absolute and inside it) as a path inside `folder`, or
/// `None` when it leads out: through `..`, as an absolute path elsewhere, or through a symlink.
pub fn inside(folder: &Path, directory: &Path) -> Option<PathBuf> {
    let relative = if directory.is_absolute() {
        directory.strip_prefix(folder).ok()?
    } else {
        directory
    };
    // Only plain names are kept: a trailing `.` would make `create_dir_all` fail.
    let mut path = folder.to_owned();
    for c in relative.components() {
        match c {
            Component::Normal(name) => path.push(name),
            Component::CurDir => {}
            _ => return None,
        }
    }
    real(&path).starts_with(real(folder)).then_some(path)
}

/// `path` with the part that exists resolved (symlinks followed) and the rest as it is.
fn real(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut existing = path;
    loop {
        if let Ok(mut resolved) = existing.canonicalize() {
            resolved.extend(rest.iter().rev());
            return resolved;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return path.to_owned(),
        }
    }
}

pub fn file_name(job_id: i64, format: FileFormat) -> String {
    match format {
        FileFormat::Iif => format!("costbridge-export-{job_id}.iif"),
        FileFormat::Csv => format!("costbridge-export-{job_id}.csv"),
    }
}

/// QuickBooks names a sub-item by its ancestors' names joined with ':' (`01:01-100`).
pub fn quickbooks_name(full_code: &str, delimiter: char) -> String {
    let mut names = Vec::new();
    let mut end = 0;
    for (i, seg) in full_code.split(delimiter).enumerate() {
        end += seg.len() + usize::from(i > 0) * delimiter.len_utf8();
        names.push(&full_code[..end]);
    }
    names.join(":")
}

/// Writes the IIF text of `lines` to `out` as it goes: a 100,000-code file is never held whole.
/// An IIF file cannot rename an item (QuickBooks matches its lines by name), so a code renamed
/// or moved since QuickBooks had it arrived as a new item beside the old one, both active: the
/// old item is made inactive too, by a line of its own after every other line, sub-items
/// before their parents (QuickBooks hides no parent before its sub-items); unless a line of
/// the same file takes that name (two codes swapped, or a new code in the old one's place),
/// which the retiring line would hide.
pub fn render_iif(ctx: &ExportContext, lines: &dyn Lines, out: &mut impl Write) -> io::Result<()> {
    out.write_all(
        b"!INVITEM\tNAME\tINVITEMTYPE\tDESC\tPURCHASEDESC\tACCNT\tCOGSACCNT\tHIDDEN\r\n",
    )?;
    // The old names first (a first pass over the lines, which are read by index): held are
    // only those of renamed codes, not every name of a 100,000-code file.
    let mut old_names: std::collections::HashSet<String> = (0..lines.len())
        .filter_map(|i| {
            let l = lines.line(i);
            let p = l.previous.filter(|p| p.full_code != l.full_code)?;
            Some(quickbooks_name(p.full_code, ctx.delimiter))
        })
        .collect();
    let mut retired: Vec<(String, String)> = Vec::new();
    for i in 0..lines.len() {
        let l = lines.line(i);
        let desc = fit_description(l.description, ctx.max_description);
        let income = l.income.map_or("", |a| a.name.as_str());
        let expense = l.expense.map_or("", |a| a.name.as_str());
        let purchase_desc = if l.expense.is_some() { desc } else { "" };
        let hidden = if l.active { "N" } else { "Y" };
        let name = quickbooks_name(l.full_code, ctx.delimiter);
        old_names.remove(&name);
        // IIF files are often opened in a spreadsheet before the import: the cells made from
        // the codes are guarded against formulas as every CSV the product writes is. Account
        // names are not: QuickBooks matches them exactly, and they are the company's own.
        let cells = neutralise_row([name.as_str(), desc, purchase_desc]);
        let [name, desc, purchase_desc] = cells.each_ref().map(AsRef::<str>::as_ref);
        let line = format!(
            "INVITEM\t{name}\tSERV\t{desc}\t{purchase_desc}\t{income}\t{expense}\t{hidden}\r\n"
        );
        write_ansi(out, &line)?;
        if let Some(p) = l.previous.filter(|p| p.full_code != l.full_code) {
            let old = quickbooks_name(p.full_code, ctx.delimiter);
            let was = fit_description(p.description, ctx.max_description);
            let cells = neutralise_row([old.as_str(), was]);
            let [shown, was] = cells.each_ref().map(AsRef::<str>::as_ref);
            let line = format!("INVITEM\t{shown}\tSERV\t{was}\t\t{income}\t{expense}\tY\r\n");
            retired.push((old, line));
        }
    }
    for (old, line) in retired.iter().rev() {
        if old_names.contains(old) {
            write_ansi(out, line)?;
        }
    }
    Ok(())
}

/// Writes `line` as QuickBooks Desktop reads an IIF file: Windows-1252, not UTF-8 (a UTF-8
/// "Béton – phase 1" went in as "BÃ©ton â€“ phase 1"). A code's own text that the set lacks
/// never gets here (`ErpProfile::unstorable` refuses it at send and at export); a stray one
/// elsewhere (an account name typed into the settings, an old name's description exported
/// before) is written '?', as Windows writes what its code page lacks.
fn write_ansi(out: &mut impl Write, line: &str) -> io::Result<()> {
    if line.is_ascii() {
        return out.write_all(line.as_bytes());
    }
    let set = Charset::Windows1252;
    let bytes: Vec<u8> = line.chars().map(|c| set.byte(c).unwrap_or(b'?')).collect();
    out.write_all(&bytes)
}

/// Writes the CSV text of `lines` to `out` as it goes, like [`render_iif`].
pub fn render_csv(ctx: &ExportContext, lines: &dyn Lines, out: &mut impl Write) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "full_code",
        "code",
        "description",
        "active",
        "parent_full_code",
        "gl_income_account",
        "gl_expense_account",
        // What the ERP had the code as, when it was renamed or moved since: a program reading
        // the file tells a rename from a new code.
        "previous_full_code",
    ])
    .map_err(csv_error)?;
    for i in 0..lines.len() {
        let l = lines.line(i);
        w.write_record(neutralise_row([
            l.full_code,
            l.code,
            fit_description(l.description, ctx.max_description),
            if l.active { "true" } else { "false" },
            l.parent_full_code.unwrap_or(""),
            l.income.map_or("", |a| a.code.as_str()),
            l.expense.map_or("", |a| a.code.as_str()),
            l.previous
                .map(|p| p.full_code)
                .filter(|p| *p != l.full_code)
                .unwrap_or(""),
        ]))
        .map_err(csv_error)?;
    }
    // Dropping the writer would flush it too, but drop its error.
    w.flush()
}

/// The file's own error when the CSV writer failed on it (its kind says why, for
/// [`cannot_write`]); the records are all text of one length, so nothing else fails.
fn csv_error(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        kind => io::Error::other(format!("{kind:?}")),
    }
}

/// Writes the file `name` in `dir` through `write`: into a temporary file, synced, then renamed
/// over `name`, so a reader never sees half a file and a retried job replaces its file.
fn write_atomically(
    dir: &Path, name: &str, write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static WRITES: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(dir)?;
    // Each write has a temporary file of its own: two claims of one job (one stalled past its
    // lease, or two instances sharing the folder) would otherwise write into one file at once,
    // and the rename would publish their bytes interleaved. Process id, a count and the time:
    // two containers are often both process 1; and should a name still be taken, the write
    // fails (to be retried) rather than truncate the other's file.
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let tmp = dir.join(format!(
        ".{name}.{}-{}-{started}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let target = dir.join(name);
    let written = (|| {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        let f = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if let Err(e) = written {
        // A unique name is not overwritten by the next attempt: leave no half file behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename itself must survive a crash too.
    File::open(dir)?.sync_all()?;
    Ok(target)
}

/// Runs file work that borrows the export's lines, which therefore cannot move to
/// `spawn_blocking`. On a multi-threaded runtime (the server's) the thread first hands its other
/// tasks to another one; a current-thread runtime has no other thread, so the work runs in place.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::current().runtime_flavor() {
        RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}

pub async fn export(
    dir: &Path, format: FileFormat, ctx: &ExportContext, lines: &dyn Lines,
) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
    let name = file_name(ctx.job_id, format);
    let written = blocking(|| {
        write_atomically(dir, &name, |out| match format {
            FileFormat::Iif => render_iif(ctx, lines, out),
            FileFormat::Csv => render_csv(ctx, lines, out),
        })
    })
    .map_err(|e| ConnectorError::Unavailable(cannot_write(dir, &name, true, &e)))?;
    tracing::info!(file = %written.display(), codes = lines.len(), "export file written");
    Ok((0..lines.len())
        .map(|i| {
            let l = lines.line(i);
            let origin_id = match format {
                FileFormat::Iif => quickbooks_name(l.full_code, ctx.delimiter),
                FileFormat::Csv => l.full_code.to_owned(),
            };
            (l.item_id, LineResult::Synced { origin_id })
        })
        .collect())
}

/// Why Costbridge could not write `file` in `dir` (an export file, or the test's probe when
/// `export` is false), as a sentence saying who refused and what to do, instead of the
/// system's "Is a directory (os error 21)".
pub fn cannot_write(dir: &Path, file: &str, export: bool, e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let what = match e.kind() {
        K::IsADirectory => format!(
            "a folder named {file} stands where the export file goes; remove or rename that \
             folder"
        ),
        K::PermissionDenied => "the server's account may not write there; give it write access \
             to that folder"
            .to_owned(),
        K::NotADirectory => "part of that path is a file, not a folder; choose another export \
             folder in Company settings → ERP connection"
            .to_owned(),
        K::NotFound => "the folder does not exist and could not be made; check the export \
             folder in Company settings → ERP connection"
            .to_owned(),
        K::StorageFull => "the disk is full; free some space".to_owned(),
        K::ReadOnlyFilesystem => "the disk is mounted read-only; make it writable".to_owned(),
        _ => format!(
            "the system refused the file ({}); ask the operator to check that folder",
            error_words(e)
        ),
    };
    if export {
        format!(
            "Costbridge cannot write the export file {file} in {}: {what}, then retry.",
            dir.display()
        )
    } else {
        format!(
            "Costbridge cannot write in the export folder {}: {what}, then test again.",
            dir.display()
        )
    }
}

/// The system's message without its "(os error N)" tail, which means nothing to a reader.
fn error_words(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// The file Test connection writes and removes again.
const PROBE: &str = ".costbridge-write-test";

pub async fn test(dir: &Path) -> (bool, String) {
    let dir = dir.to_owned();
    let folder = dir.clone();
    let probe = tokio::task::spawn_blocking(move || {
        write_atomically(&folder, PROBE, |out| out.write_all(b"ok")).and_then(std::fs::remove_file)
    });
    match probe.await {
        Ok(Ok(())) => (true, "The export folder exists and is writable.".into()),
        Ok(Err(e)) => (false, cannot_write(&dir, PROBE, false, &e)),
        Err(e) => (false, format!("The folder check did not finish: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExportLine, GlKind};

    fn line<'a>(id: i64, full: &'a str, parent: Option<&'a str>) -> ExportLine<'a> {
        ExportLine {
            item_id: id,
            code: full.rsplit('-').next().unwrap(),
            full_code: full,
            description: "Concrete",
            active: true,
            parent_full_code: parent,
            origin_id: None,
            previous: None,
            income: Some(crate::test_account(
                "4000",
                "Construction Income",
                GlKind::Income,
            )),
            expense: None,
        }
    }

    #[test]
    fn a_folder_that_cannot_take_the_file_is_a_sentence() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("costbridge-export-7.iif")).unwrap();
        let e = write_atomically(dir.path(), "costbridge-export-7.iif", |out| {
            out.write_all(b"x")
        })
        .unwrap_err();
        let said = cannot_write(dir.path(), "costbridge-export-7.iif", true, &e);
        assert!(
            said.starts_with("Costbridge cannot write the export file costbridge-export-7.iif in "),
            "{said}"
        );
        assert!(
            said.contains("a folder named costbridge-export-7.iif"),
            "{said}"
        );
        assert!(!said.contains("os error"), "{said}");
    }

    #[test]
    fn iif_has_subitems_and_accounts() {
        let ctx = ExportContext {
            job_id: 7,
            delimiter: '-',
            max_description: None,
        };
        assert_eq!(quickbooks_name("01-100-20", '-'), "01:01-100:01-100-20");
        let mut text = Vec::new();
        render_iif(
            &ctx,
            &[line(1, "01", None), line(2, "01-100", Some("01"))],
            &mut text,
        )
        .unwrap();
        let text = String::from_utf8(text).unwrap();
        let rows: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            rows[0],
            "!INVITEM\tNAME\tINVITEMTYPE\tDESC\tPURCHASEDESC\tACCNT\tCOGSACCNT\tHIDDEN"
        );
        assert_eq!(
            rows[2],
            "INVITEM\t01:01-100\tSERV\tConcrete\t\tConstruction Income\t\tN"
        );
    }

    /// QuickBooks Desktop reads an IIF file as Windows-1252: a French or autocorrected
    /// description is written in its bytes (UTF-8's came in as "BÃ©ton â€“").
    #[test]
    fn iif_is_written_in_windows_1252() {
        let ctx = ExportContext {
            job_id: 7,
            delimiter: '-',
            max_description: None,
        };
        let lines = [ExportLine {
            description: "Béton – “phase 1”",
            ..line(1, "01", None)
        }];
        let mut text = Vec::new();
        render_iif(&ctx, &lines, &mut text).unwrap();
        let row = text.split(|&b| b == b'\n').nth(1).unwrap();
        let desc = b"\tB\xE9ton \x96 \x93phase 1\x94\t";
        assert!(row.windows(desc.len()).any(|w| w == desc), "{row:x?}");
    }

    /// QuickBooks cannot rename an item from an IIF file: a renamed code's new item goes in,
    /// and its old one is made inactive after the rest, sub-items first; a code whose name
    /// stayed gets no such line. The CSV names what the code was.
    #[test]
    fn a_renamed_code_retires_its_old_item() {
        let ctx = ExportContext {
            job_id: 7,
            delimiter: '-',
            max_description: None,
        };
        let was = |full_code| crate::Previous {
            code: "",
            full_code,
            description: "Old",
            active: true,
        };
        let lines = [
            ExportLine {
                previous: Some(was("01")),
                ..line(1, "02", None)
            },
            ExportLine {
                previous: Some(was("01-100")),
                ..line(2, "02-100", Some("02"))
            },
            ExportLine {
                previous: Some(was("03")),
                ..line(3, "03", None)
            },
            // 04 and 05 swapped names: both stay active.
            ExportLine {
                previous: Some(was("05")),
                ..line(4, "04", None)
            },
            ExportLine {
                previous: Some(was("04")),
                ..line(5, "05", None)
            },
        ];
        let mut text = Vec::new();
        render_iif(&ctx, &lines, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        let rows: Vec<&str> = text.split("\r\n").filter(|r| !r.is_empty()).collect();
        assert_eq!(
            rows[6..],
            [
                "INVITEM\t01:01-100\tSERV\tOld\t\tConstruction Income\t\tY",
                "INVITEM\t01\tSERV\tOld\t\tConstruction Income\t\tY",
            ]
        );
        let mut csv = Vec::new();
        render_csv(&ctx, &lines, &mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        assert!(
            csv.contains("02-100,100,Concrete,true,02,4000,,01-100\n"),
            "{csv}"
        );
        assert!(csv.contains("03,03,Concrete,true,,4000,,\n"), "{csv}");
    }

    #[test]
    fn a_folder_must_stay_inside_the_companys_folder() {
        let root = tempfile::tempdir().unwrap();
        let company = root.path().join("company-1");
        let other = root.path().join("company-2");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::create_dir_all(&company).unwrap();
        for ok in [".", "iif", "a/b", "./x"] {
            assert_eq!(
                inside(&company, Path::new(ok)),
                Some(company.join(ok)),
                "{ok}"
            );
        }
        assert_eq!(
            inside(&company, &company.join("sub")),
            Some(company.join("sub"))
        );
        for bad in ["..", "../company-2", "a/../../company-2", "/tmp"] {
            assert_eq!(inside(&company, Path::new(bad)), None, "{bad}");
        }
        assert_eq!(inside(&company, &other), None);
        // A symlink out, even with a folder not yet created below it.
        std::os::unix::fs::symlink(&other, company.join("link")).unwrap();
        assert_eq!(inside(&company, Path::new("link")), None);
        assert_eq!(inside(&company, Path::new("link/new")), None);
    }

    #[tokio::test]
    async fn a_retried_job_replaces_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ExportContext {
            job_id: 3,
            delimiter: '-',
            max_description: Some(4),
        };
        export(dir.path(), FileFormat::Csv, &ctx, &[line(1, "01", None)])
            .await
            .unwrap();
        let out = export(dir.path(), FileFormat::Csv, &ctx, &[line(1, "01", None)])
            .await
            .unwrap();
        assert_eq!(
            out,
            vec![(
                1,
                LineResult::Synced {
                    origin_id: "01".into()
                }
            )]
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("costbridge-export-3.csv")]
        );
        let text = std::fs::read_to_string(dir.path().join("costbridge-export-3.csv")).unwrap();
        assert!(text.contains("01,01,Conc,true,,4000,"), "{text}");
    }
}
