//! Password hashing (argon2id, memory-hard), and API tokens: making them and hashing them for
//! storage. Password hashing runs on the blocking pool: it is deliberately slow and must not
//! stall the async workers.
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let salt = SaltString::encode_b64(&bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
}

pub async fn verify(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// The first of `candidates` (the accounts of one email, oldest first) whose password this is,
/// with the hash it matched: what a sign-in then issues stands only while the account still has
/// it. An unknown email is checked against a dummy hash, so timing does not tell it apart.
pub async fn sign_in<U>(candidates: Vec<(U, String)>, password: String) -> Option<(U, String)> {
    if candidates.is_empty() {
        verify(password, dummy_hash().to_owned()).await;
        return None;
    }
    for (user, hash) in candidates {
        if verify(password.clone(), hash.clone()).await {
            return Some((user, hash));
        }
    }
    None
}

/// A valid argon2 hash of a random password, verified against when an email is unknown.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_blocking(&new_token()).unwrap_or_default())
}

/// 256 random bits, hex, with a prefix that secret scanners can recognise.
pub fn new_token() -> String {
    random_hex("cb_", 32)
}

/// `bytes` random bytes in hex after `prefix`.
pub fn random_hex(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    format!("{prefix}{}", hex::encode(buf))
}

/// API tokens and session ids are stored as their SHA-256: a leaked table grants nothing.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
