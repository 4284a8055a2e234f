//! A company's Xero grant (issue #11): connected, or given up by Xero until someone connects
//! again.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantStatus {
    /// Costbridge holds tokens Xero accepts (refreshed as needed).
    Connected,
    /// Xero said the grant is gone (revoked, or 60 days unused): only Connect to Xero helps.
    NeedsReconnect,
}

impl GrantStatus {
    pub const ALL: [GrantStatus; 2] = [GrantStatus::Connected, GrantStatus::NeedsReconnect];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Connected => "connected",
            GrantStatus::NeedsReconnect => "needs_reconnect",
        }
    }
}

crate::queue::decode_stored!(GrantStatus => "Xero grant");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_states_read_back_and_unknown_ones_are_refused() {
        for s in GrantStatus::ALL {
            assert_eq!(GrantStatus::try_from(s.as_str().to_owned()), Ok(s));
        }
        assert!(GrantStatus::try_from("paused".to_owned()).is_err());
    }
}
