//! The file connector: each export job becomes one file, QuickBooks Desktop IIF or CSV. The file
//! is named after the job and written atomically (temporary file, fsync, rename), so a retried
//! job replaces its file instead of adding a second one.
use crate::{
    Connector, ConnectorError, Env, ExportContext, ExportLine, Field, FieldErrors, GlAccount,
    Input, LineResult, fit_description,
};
use serde::{Deserialize, Serialize};
use std::io::Write;
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
        &self, ctx: &ExportContext, lines: &[ExportLine],
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

pub fn render_iif(ctx: &ExportContext, lines: &[ExportLine]) -> String {
    let mut out = String::from(
        "!INVITEM\tNAME\tINVITEMTYPE\tDESC\tPURCHASEDESC\tACCNT\tCOGSACCNT\tHIDDEN\r\n",
    );
    for l in lines {
        let desc = fit_description(&l.description, ctx.max_description);
        let income = l.income.as_ref().map(|a| a.name.as_str()).unwrap_or("");
        let expense = l.expense.as_ref().map(|a| a.name.as_str()).unwrap_or("");
        let purchase_desc = if l.expense.is_some() { desc } else { "" };
        let hidden = if l.active { "N" } else { "Y" };
        out.push_str(&format!(
            "INVITEM\t{}\tSERV\t{desc}\t{purchase_desc}\t{income}\t{expense}\t{hidden}\r\n",
            quickbooks_name(&l.full_code, ctx.delimiter)
        ));
    }
    out
}

pub fn render_csv(ctx: &ExportContext, lines: &[ExportLine]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "full_code",
        "code",
        "description",
        "active",
        "parent_full_code",
        "gl_income_account",
        "gl_expense_account",
    ])?;
    for l in lines {
        w.write_record(costbridge_domain::csv_cell::neutralise_row([
            l.full_code.as_str(),
            l.code.as_str(),
            fit_description(&l.description, ctx.max_description),
            if l.active { "true" } else { "false" },
            l.parent_full_code.as_deref().unwrap_or(""),
            l.income.as_ref().map(|a| a.code.as_str()).unwrap_or(""),
            l.expense.as_ref().map(|a| a.code.as_str()).unwrap_or(""),
        ]))?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn write_atomically(dir: &Path, name: &str, content: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(content)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &target)?;
    // The rename itself must survive a crash too.
    std::fs::File::open(dir)?.sync_all()?;
    Ok(target)
}

pub async fn export(
    dir: &Path, format: FileFormat, ctx: &ExportContext, lines: &[ExportLine],
) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
    let content = match format {
        FileFormat::Iif => render_iif(ctx, lines),
        FileFormat::Csv => {
            render_csv(ctx, lines).map_err(|e| ConnectorError::Unavailable(e.to_string()))?
        }
    };
    let (folder, name) = (dir.to_owned(), file_name(ctx.job_id, format));
    let file = name.clone();
    let written =
        tokio::task::spawn_blocking(move || write_atomically(&folder, &name, content.as_bytes()))
            .await
            .map_err(|e| ConnectorError::Unavailable(e.to_string()))?
            .map_err(|e| ConnectorError::Unavailable(cannot_write(dir, &file, true, &e)))?;
    tracing::info!(file = %written.display(), codes = lines.len(), "export file written");
    Ok(lines
        .iter()
        .map(|l| {
            let origin_id = match format {
                FileFormat::Iif => quickbooks_name(&l.full_code, ctx.delimiter),
                FileFormat::Csv => l.full_code.clone(),
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
        write_atomically(&folder, PROBE, b"ok").and_then(std::fs::remove_file)
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
    use crate::GlKind;

    fn line(id: i64, full: &str, parent: Option<&str>) -> ExportLine {
        ExportLine {
            item_id: id,
            code: full.rsplit('-').next().unwrap().into(),
            full_code: full.into(),
            description: "Concrete".into(),
            active: true,
            parent_full_code: parent.map(Into::into),
            origin_id: None,
            previous: None,
            income: Some(GlAccount {
                code: "4000".into(),
                name: "Construction Income".into(),
                kind: GlKind::Income,
            }),
            expense: None,
        }
    }

    #[test]
    fn a_folder_that_cannot_take_the_file_is_a_sentence() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("costbridge-export-7.iif")).unwrap();
        let e = write_atomically(dir.path(), "costbridge-export-7.iif", b"x").unwrap_err();
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
        let text = render_iif(&ctx, &[line(1, "01", None), line(2, "01-100", Some("01"))]);
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
