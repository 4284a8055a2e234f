//! What connectors' settings share: GL accounts, and the checks that name a bad field.
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GlKind {
    Income,
    Expense,
}

impl GlKind {
    /// As the API and people say it: `income`, `expense`.
    pub fn as_str(self) -> &'static str {
        match self {
            GlKind::Income => "income",
            GlKind::Expense => "expense",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GlAccount {
    pub code: String,
    pub name: String,
    #[schema(inline)]
    pub kind: GlKind,
}

fn has_credentials(u: &reqwest::Url) -> bool {
    !u.username().is_empty() || u.password().is_some()
}

/// A URL as its connection's admin sees it: any user name and password in it removed (a
/// connection stored before they were refused may still hold them). The query stays whole: the
/// form sends it back, and a hook that authenticates by `?sig=` must keep its value.
pub fn without_credentials(url: &str) -> String {
    match reqwest::Url::parse(url.trim()) {
        Ok(mut u) if has_credentials(&u) => {
            strip_credentials(&mut u);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

fn strip_credentials(u: &mut reqwest::Url) {
    let _ = u.set_username("");
    let _ = u.set_password(None);
}

/// A URL as logs and messages show it: [`without_credentials`], the values of its query hidden,
/// names kept, and no fragment: `postgres://db/costs?password=…` (which the PostgreSQL driver
/// reads) and a receiver's `?token=…` were logged whole, and a `#` in such a password left
/// what follows it in the fragment, shown.
pub fn shown_url(url: &str) -> String {
    let url = url.trim();
    match reqwest::Url::parse(url) {
        // An '@' past the authority is a password's tail read as a path (`cb:123/x@db`
        // parses as port 123): only the unparsed reading finds the user-info.
        Ok(u)
            if [Some(u.path()), u.query(), u.fragment()]
                .iter()
                .flatten()
                .any(|part| part.contains('@')) =>
        {
            unparsed_shown(url)
        }
        Ok(mut u) if has_credentials(&u) || u.query().is_some() || u.fragment().is_some() => {
            strip_credentials(&mut u);
            // A part without '=' is a bare token (`?s3cret`) or the tail of a value holding
            // '&' (`password=ab&cd`): hidden whole, not shown as a name.
            let names: Vec<String> = (u.query().unwrap_or_default().split('&'))
                .filter(|part| !part.is_empty())
                .map(value_hidden)
                .collect();
            u.set_query((!names.is_empty()).then(|| names.join("&")).as_deref());
            u.set_fragment(None);
            u.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => unparsed_shown(url),
    }
}

/// One `name=value` part of a query or a connection string with its value hidden; a part
/// without `=` (a bare token, or a value's tail after a separator) is hidden whole.
fn value_hidden(part: &str) -> String {
    match part.split_once('=') {
        Some((name, _)) => format!("{name}=***"),
        None => "***".to_owned(),
    }
}

/// [`shown_url`] of a URL that does not parse (or parses wrongly): a password holding `/`, `?`
/// or `#` ends the address early (`postgres://cb:ab/cd@db/costs` reads "ab" as a port), and the
/// URL was shown whole, password and all, in the error that it cannot be opened. Whatever could
/// be user-info (up to the last `@`) and everything after a `?` or `#` are hidden. Text with no
/// `://` may be a keyword connection string (`host=db password=s3cret`): every value is hidden,
/// and all of it when a value is quoted (its spaces would split it).
fn unparsed_shown(url: &str) -> String {
    if !url.contains("://") && url.contains('=') {
        if url.contains(['\'', '"']) {
            return "***".to_owned();
        }
        let names: Vec<String> = url.split_whitespace().map(value_hidden).collect();
        return names.join(" ");
    }
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = match rest.rfind('@') {
        Some(at) => format!("***@{}", &rest[at + 1..]),
        None => rest.to_owned(),
    };
    let rest = match rest.find(['?', '#']) {
        Some(end) => format!("{}{}***", &rest[..end], &rest[end..=end]),
        None => rest,
    };
    if scheme.is_empty() {
        rest
    } else {
        format!("{scheme}://{rest}")
    }
}

/// What is wrong with `value` as an `http://` or `https://` address without user-info, if
/// anything (see [`FieldErrors::url`]).
pub fn url_problem(value: &str) -> Option<&'static str> {
    let parsed = reqwest::Url::parse(value)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
    match parsed {
        Some(u) if !value.contains(char::is_whitespace) => has_credentials(&u).then_some(
            "must not contain a user name or password; use the username/password fields",
        ),
        _ => Some("must be an http:// or https:// address"),
    }
}

/// What is wrong with settings, by field: `connector.<field>` → messages.
#[derive(Debug, Default)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: &str) {
        self.0
            .entry(format!("connector.{field}"))
            .or_default()
            .push(message.to_owned());
    }

    /// Text that must not be blank.
    pub fn required(&mut self, field: &str, value: &str) {
        if value.trim().is_empty() {
            self.add(field, "is required");
        }
    }

    /// An `http://` or `https://` address without user-info: credentials in a URL would be
    /// shown wherever the URL is (responses, audit log, messages), so they have their own fields.
    pub fn url(&mut self, field: &str, value: &str) {
        if let Some(problem) = url_problem(value) {
            self.add(field, problem);
        }
    }

    /// GL accounts typed into the settings: code and name given, no control characters, no
    /// code twice.
    pub fn gl_accounts(&mut self, accounts: &[GlAccount]) {
        let mut seen = HashSet::new();
        for (i, a) in accounts.iter().enumerate() {
            let key = format!("gl_accounts[{i}]");
            if a.code.trim().is_empty() || a.name.trim().is_empty() {
                self.add(&key, "code and name are required");
            }
            // Named by field, in the words the code forms use (a line break, a tab), since an
            // account pasted from a spreadsheet brings its cell's line break along.
            for (part, text) in [("code", &a.code), ("name", &a.name)] {
                if let Some(c) = text.chars().find(|c| c.is_control()) {
                    let problem =
                        costbridge_domain::wbs::control_character(c as u32, part == "name");
                    self.add(&key, &format!("{part} {problem}"));
                }
            }
            if !seen.insert(a.code.as_str()) {
                self.add(&key, &format!("duplicate account code '{}'", a.code));
            }
        }
    }

    pub(crate) fn into_result(self) -> Result<(), BTreeMap<String, Vec<String>>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_errors(url: &str) -> Vec<String> {
        let mut e = FieldErrors::default();
        e.url("url", url);
        e.0.remove("connector.url").unwrap_or_default()
    }

    #[test]
    fn a_url_with_user_info_is_refused_and_never_shown() {
        for ok in ["http://erp.example/", "https://erp.example:8443/hook?x=1"] {
            assert!(url_errors(ok).is_empty(), "{ok}");
        }
        for bad in [
            "http://user:pass@erp.example/",
            "https://user@erp.example/",
            "http://:pass@erp.example/",
        ] {
            assert_eq!(
                url_errors(bad),
                ["must not contain a user name or password; use the username/password fields"],
                "{bad}"
            );
        }
        for bad in [
            "ftp://erp.example/",
            "erp.example",
            "http://",
            "http://a b/",
        ] {
            assert_eq!(
                url_errors(bad),
                ["must be an http:// or https:// address"],
                "{bad}"
            );
        }
        assert_eq!(
            shown_url("http://user:pass@erp.example:8000/x"),
            "http://erp.example:8000/x"
        );
        assert_eq!(
            shown_url("http://erp.example:8000"),
            "http://erp.example:8000"
        );
        // The PostgreSQL driver reads a password from the query too.
        assert_eq!(
            shown_url("postgres://cb@db:5432/costs?sslmode=require&password=s3cret"),
            "postgres://db:5432/costs?sslmode=***&password=***"
        );
        // A password with '/' or '#' stops the URL parsing: it was shown whole.
        for (url, shown) in [
            ("postgres://cb:ab/cd@db/costs", "postgres://***@db/costs"),
            (
                "postgres://cb:a#b@db:5432/costs?x=1",
                "postgres://***@db:5432/costs?***",
            ),
            (
                "postgres://db:port/costs?password=p/q",
                "postgres://db:port/costs?***",
            ),
            // Parsed, but the password's tail read as a path or a fragment.
            ("postgres://cb:123/x@db/costs", "postgres://***@db/costs"),
            (
                "postgres://db:5432/costs?password=ab#cd",
                "postgres://db:5432/costs?password=***",
            ),
            (
                "postgres://db:port/costs#cd",
                "postgres://db:port/costs#***",
            ),
            // A bare token, a value holding '&', a keyword connection string.
            (
                "https://hooks.example/run?s3cret",
                "https://hooks.example/run?***",
            ),
            (
                "postgres://db/costs?password=ab&cd",
                "postgres://db/costs?password=***&***",
            ),
            (
                "host=db user=cb password=s3cret",
                "host=*** user=*** password=***",
            ),
            ("host=db password='a b'", "***"),
        ] {
            assert_eq!(shown_url(url), shown, "{url}");
        }
        // The admin's form keeps the query: it is sent back as the address.
        assert_eq!(
            without_credentials("https://u:p@hooks.example/run?sig=abc"),
            "https://hooks.example/run?sig=abc"
        );
    }

    #[test]
    fn an_account_pasted_with_its_cells_line_break_is_named_in_words() {
        let account = |code: &str, name: &str| GlAccount {
            code: code.into(),
            name: name.into(),
            kind: GlKind::Income,
        };
        let mut e = FieldErrors::default();
        e.gl_accounts(&[
            account("4000", "Sales"),
            account("4100", "Contract\nrevenue"),
            account("41\t00", "Other"),
        ]);
        let errors = e.into_result().unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(
            errors.values().flatten().collect::<Vec<_>>(),
            [
                "name contains a line break; replace it with a space",
                "code contains a tab; remove it"
            ]
        );
    }
}
