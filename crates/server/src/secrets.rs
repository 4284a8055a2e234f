//! Connector secrets at rest: each secret value (a password, a webhook signing secret, later an
//! OAuth token) is stored as `enc:v1:<key id>:<base64 of nonce and ciphertext>`, encrypted with
//! XChaCha20-Poly1305 under the operator's key. Which fields are secrets comes from the
//! connector registry (`ConnectorSettings::stored_with` / `from_stored`); this module is the
//! only place that holds the key. A value without the `enc:` prefix was stored before
//! encryption: it is read as it is and encrypted on the next save (or by `secrets rotate`).
use crate::config::{SecretsSettings, Settings};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use costbridge_erp::ConnectorSettings;
use costbridge_storage::Db;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

const PREFIX: &str = "enc:v1:";
const NONCE: usize = 24;
/// The file SQLite uses when no key is configured, next to the database file.
const DEFAULT_KEY_FILE: &str = "costbridge-secrets.key";
const SETTING: &str = "[secrets] key_file (or COSTBRIDGE__SECRETS__KEY)";

/// The key that seals and opens stored secrets.
#[derive(Clone)]
pub struct Cipher {
    aead: XChaCha20Poly1305,
    /// The first 8 hex digits of the key's SHA-256: names the key in stored values and errors.
    id: String,
}

/// Never shows the key.
impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cipher(key {})", self.id)
    }
}

impl Cipher {
    pub fn new(key: &[u8; 32]) -> Cipher {
        Cipher {
            aead: XChaCha20Poly1305::new(key.into()),
            id: hex::encode(&Sha256::digest(key)[..4]),
        }
    }

    /// Reads a key in base64 (32 bytes); `source` names where it came from for the error.
    pub fn from_base64(text: &str, source: &str) -> anyhow::Result<Cipher> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|e| anyhow::anyhow!("{source}: the key is not base64: {e}"))?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            anyhow::anyhow!("{source}: the key must be 32 bytes, not {}", b.len())
        })?;
        Ok(Cipher::new(&key))
    }

    pub fn from_file(path: &Path) -> anyhow::Result<Cipher> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the key file {}: {e}", path.display()))?;
        Cipher::from_base64(&text, &path.display().to_string())
    }

    /// Writes a new random key to `path` (readable by its owner only); fails if it exists.
    /// The key seals secrets the database then commits, so it must outlive a crash whole: it
    /// is written and flushed to disk under a temporary name, then linked to `path` (which,
    /// unlike a rename, fails if the file exists) and the folder flushed. Written in place, a
    /// power loss could leave an empty key file and every connector secret unreadable.
    pub fn create_file(path: &Path) -> anyhow::Result<Cipher> {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let cannot = |e: std::io::Error| {
            anyhow::anyhow!("cannot create the key file {}: {e}", path.display())
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let tmp = dir.join(format!(
            ".costbridge-key.{}-{started}.tmp",
            std::process::id()
        ));
        let text = format!("{}\n", B64.encode(key));
        let write_new = |at: &Path| {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(at)?;
            std::io::Write::write_all(&mut file, text.as_bytes())?;
            file.sync_all()
        };
        let linked = write_new(&tmp).and_then(|()| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(cannot(e)),
            // A folder that takes no hard links (some network and FUSE mounts): written in
            // place, flushed, as before; only a crash mid-write can then leave it short.
            Err(_) => write_new(path).map_err(cannot)?,
        }
        // The new name must outlive a crash too; a folder that cannot be flushed (some
        // mounts) keeps the name as its system does.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        Ok(Cipher::new(&key))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Encrypts one value with a fresh random nonce.
    pub fn seal(&self, plain: &str) -> String {
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .aead
            .encrypt(XNonce::from_slice(&nonce), plain.as_bytes())
            .expect("XChaCha20-Poly1305 encrypts any length a connector setting can have");
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        format!("{PREFIX}{}:{}", self.id, B64.encode(bytes))
    }

    /// Decrypts a value `seal` wrote; a value stored before encryption comes back as it is.
    pub fn open(&self, stored: &str) -> Result<String, String> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (id, data) = rest
            .split_once(':')
            .ok_or("an encrypted secret is damaged (no key id)")?;
        if id != self.id {
            return Err(format!(
                "a secret is encrypted with key {id}, but the configured key is {}",
                self.id
            ));
        }
        let bytes = B64
            .decode(data)
            .ok()
            .filter(|b| b.len() > NONCE)
            .ok_or("an encrypted secret is damaged (not base64)")?;
        let (nonce, sealed) = bytes.split_at(NONCE);
        let plain = self
            .aead
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| format!("a secret does not decrypt with key {}", self.id))?;
        String::from_utf8(plain).map_err(|_| "a decrypted secret is not UTF-8".to_owned())
    }

    /// The stored form of a connection, its secrets encrypted.
    pub fn stored(&self, settings: &ConnectorSettings) -> serde_json::Value {
        settings.stored_with(|s| self.seal(s))
    }

    /// Reads a stored connection, decrypting its secrets.
    pub fn load(&self, stored: serde_json::Value) -> Result<ConnectorSettings, String> {
        ConnectorSettings::from_stored(stored, |s| self.open(s))
    }
}

/// Whether a stored connection holds at least one encrypted secret.
fn holds_encrypted(stored: serde_json::Value) -> bool {
    let mut found = false;
    let _ = ConnectorSettings::from_stored(stored, |s| {
        found |= s.starts_with(PREFIX);
        Ok(s.to_owned())
    });
    found
}

/// Where SQLite keeps its key when none is configured; `None` for PostgreSQL.
fn default_key_file(database_url: &str) -> Option<PathBuf> {
    let file = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let file = file.split('?').next().unwrap_or(file);
    let dir = Path::new(file)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Some(dir.join(DEFAULT_KEY_FILE))
}

/// The configured key, if any: `key` wins over `key_file`.
fn configured(s: &SecretsSettings) -> anyhow::Result<Option<Cipher>> {
    match (&s.key, &s.key_file) {
        (Some(key), _) => Cipher::from_base64(key.expose(), "[secrets] key").map(Some),
        (None, Some(file)) => Cipher::from_file(file).map(Some),
        (None, None) => Ok(None),
    }
}

/// The key for this database, checked against what it stores: every stored connection must
/// decrypt with it, else the start stops with a message naming the setting. With no key
/// configured, SQLite uses (or, while the database holds no encrypted secret, creates) the key
/// file next to the database; PostgreSQL refuses, since its instances must share one key.
pub async fn cipher(settings: &Settings, db: &Db) -> anyhow::Result<Cipher> {
    let stored = db.erp_connectors().await?;
    // Xero's tokens are always encrypted (issue #11), event subscriptions' secrets too.
    let grants = db.xero_grant_secrets().await?;
    let subscriptions = db.event_subscription_secrets().await?;
    let cipher = match configured(&settings.secrets)? {
        Some(c) => c,
        None => {
            let Some(path) = default_key_file(&settings.server.database_url) else {
                anyhow::bail!(
                    "PostgreSQL needs {SETTING}: the key that encrypts connector secrets, \
                     shared by every instance (32 bytes in base64: head -c 32 /dev/urandom | base64)"
                );
            };
            if path.exists() {
                Cipher::from_file(&path)?
            } else if let Some(company) = stored
                .iter()
                .find(|(_, text)| serde_json::from_str(text).is_ok_and(holds_encrypted))
                .map(|(company, _)| *company)
                .or(grants.first().map(|g| g.0))
                .or(subscriptions.first().map(|s| s.1))
            {
                anyhow::bail!(
                    "the database holds encrypted connector secrets (company {company}) but no \
                     key is configured and {} does not exist: set {SETTING}",
                    path.display()
                );
            } else {
                let c = Cipher::create_file(&path)?;
                tracing::info!(key_file = %path.display(), key = c.id(),
                    "created a key for connector secrets (no [secrets] key_file was set); keep it with the database's backups, but apart from them");
                c
            }
        }
    };
    for (company, text) in &stored {
        let value = serde_json::from_str(text).unwrap_or_default();
        cipher.load(value).map_err(|e| {
            anyhow::anyhow!(
                "company {company}'s connector secrets cannot be read: {e}; set {SETTING} to the key they were encrypted with"
            )
        })?;
    }
    for (id, company, sealed) in &subscriptions {
        cipher.open(sealed).map_err(|e| {
            anyhow::anyhow!(
                "company {company}'s event subscription {id} cannot be read: {e}; set {SETTING} to the key it was encrypted with"
            )
        })?;
    }
    for (company, access, refresh) in &grants {
        for token in [access, refresh] {
            cipher.open(token).map_err(|e| {
                anyhow::anyhow!(
                    "company {company}'s Xero tokens cannot be read: {e}; set {SETTING} to the key they were encrypted with"
                )
            })?;
        }
    }
    Ok(cipher)
}

/// One sealed value opened with `old` and sealed with `new`; `what` names it in the error.
fn reseal(
    old: &Cipher, new: &Cipher, sealed: &str, what: impl FnOnce() -> String,
) -> anyhow::Result<String> {
    old.open(sealed)
        .map(|plain| new.seal(&plain))
        .map_err(|e| anyhow::anyhow!("{}: {e}; nothing was changed", what()))
}

/// Re-encrypts every stored secret with `new` (clear ones too), in one transaction; returns
/// how many connections were rewritten.
pub async fn rotate(db: &Db, old: &Cipher, new: &Cipher) -> anyhow::Result<usize> {
    let mut rows = Vec::new();
    for (company, text) in db.erp_connectors().await? {
        let settings = old
            .load(serde_json::from_str(&text).unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("company {company}: {e}; nothing was changed"))?;
        rows.push((company, text, new.stored(&settings)));
    }
    // Xero's tokens are secrets of the connection too (issue #11).
    let mut grants = Vec::new();
    for (company, access, refresh) in db.xero_grant_secrets().await? {
        let what = || format!("company {company}'s Xero tokens");
        grants.push(costbridge_storage::xero::GrantSecrets {
            company,
            after: (
                reseal(old, new, &access, what)?,
                reseal(old, new, &refresh, what)?,
            ),
            before: (access, refresh),
        });
    }
    // Event subscriptions' signing secrets are sealed with the same key.
    let mut subscriptions = Vec::new();
    for (id, company, sealed) in db.event_subscription_secrets().await? {
        let after = reseal(old, new, &sealed, || {
            format!("company {company}'s event subscription {id}")
        })?;
        subscriptions.push((id, sealed, after));
    }
    // So are the API's kept idempotent answers, which may hold a secret shown once.
    let mut answers = Vec::new();
    for (owner, key, sealed) in db.kept_answers().await? {
        let after = reseal(old, new, &sealed, || {
            format!(
                "company {}'s kept answer to Idempotency-Key {key:?}",
                owner.company
            )
        })?;
        answers.push(costbridge_storage::requests::KeptAnswer {
            owner,
            key,
            before: sealed,
            after,
        });
    }
    db.rewrite_erp_connectors(&rows, &grants, &subscriptions, &answers)
        .await?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new key reaches its file whole, with nothing left beside it, and never replaces one.
    #[test]
    fn a_key_file_is_made_whole_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        let made = Cipher::create_file(&path).unwrap();
        assert_eq!(Cipher::from_file(&path).unwrap().id(), made.id());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secrets.key"]);
        let again = Cipher::create_file(&path).map(|c| c.id().to_owned());
        assert!(again.is_err(), "{again:?}");
        assert_eq!(Cipher::from_file(&path).unwrap().id(), made.id());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_only() {
        let key = Cipher::new(&[7; 32]);
        let a = key.seal("hunter2-but-longer");
        let b = key.seal("hunter2-but-longer");
        assert!(a.starts_with(&format!("enc:v1:{}:", key.id())), "{a}");
        assert!(!a.contains("hunter2"));
        assert_ne!(a, b, "a fresh nonce per value");
        assert_eq!(key.open(&a).unwrap(), "hunter2-but-longer");
        // Stored before encryption: read as it is.
        assert_eq!(key.open("plain-old").unwrap(), "plain-old");
        let other = Cipher::new(&[8; 32]);
        assert!(other.open(&a).unwrap_err().contains("encrypted with key"));
        // Same id, tampered ciphertext.
        let mut bytes = B64.decode(a.rsplit(':').next().unwrap()).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        let tampered = format!("enc:v1:{}:{}", key.id(), B64.encode(bytes));
        assert!(
            key.open(&tampered)
                .unwrap_err()
                .contains("does not decrypt")
        );
    }

    #[test]
    fn keys_are_32_bytes_of_base64() {
        assert!(Cipher::from_base64(&B64.encode([1; 32]), "k").is_ok());
        let e = Cipher::from_base64(&B64.encode([1; 16]), "[secrets] key").unwrap_err();
        assert_eq!(
            e.to_string(),
            "[secrets] key: the key must be 32 bytes, not 16"
        );
        assert!(Cipher::from_base64("not base64!", "k").is_err());
    }

    #[test]
    fn sqlite_keeps_its_key_next_to_the_database() {
        assert_eq!(
            default_key_file("sqlite:///var/lib/cb/data.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/cb/costbridge-secrets.key"))
        );
        assert_eq!(
            default_key_file("sqlite://costbridge.db"),
            Some(PathBuf::from("./costbridge-secrets.key"))
        );
        assert_eq!(default_key_file("postgres://u@h/db"), None);
    }
}
