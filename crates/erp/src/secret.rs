//! `Secret`: the type of every secret in connector settings (a password, a signing key, an API
//! key, an OAuth token). Whatever prints or serialises it gets `********`, so an API response, an
//! audit entry or a log line cannot leak one, whatever the field is called. The value comes out
//! only through [`Secret::expose`] (for the ERP) and in the stored form of a connection.
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::Cell;
use std::fmt;

/// What a secret looks like to anyone who reads it back.
pub const MASK: &str = "********";

thread_local! {
    /// Set while `ConnectorSettings::stored` serialises the settings for the database.
    static EXPOSED: Cell<bool> = const { Cell::new(false) };
}

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the one call that hands it to the ERP.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is the mask itself (a client sent back what it read).
    pub fn is_mask(&self) -> bool {
        self.0 == MASK
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if EXPOSED.get() {
            s.serialize_str(&self.0)
        } else {
            s.serialize_str(MASK)
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Runs `f` with secrets serialising as their value: only for the stored form of a connection.
/// Serialisation is synchronous, so the flag cannot leak into other work on this thread.
pub(crate) fn exposed<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            EXPOSED.set(self.0);
        }
    }
    let _restore = Restore(EXPOSED.replace(true));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_prints_and_serialises_masked_except_when_stored() {
        let s = Secret::from("hunter2-but-longer");
        assert_eq!(format!("{s} {s:?}"), format!("{MASK} {MASK}"));
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{MASK}\""));
        assert_eq!(
            exposed(|| serde_json::to_string(&s).unwrap()),
            "\"hunter2-but-longer\""
        );
        // Masked again once the stored form is written.
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{MASK}\""));
        assert_eq!(s.expose(), "hunter2-but-longer");
        let back: Secret = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(back.expose(), "abc");
        assert!(Secret::from(MASK).is_mask() && !back.is_mask());
    }
}
