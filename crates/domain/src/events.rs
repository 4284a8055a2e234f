//! Events sent to a company's subscribers (README, Integrations → Events): what can happen, and
//! where one delivery stands.
use crate::queue::{UnknownState, decode};
use serde::Serialize;

/// What a subscriber can ask to hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "cost_code.created")]
    CodeCreated,
    #[serde(rename = "cost_code.updated")]
    CodeUpdated,
    /// Sent to the ERP (Send to ERP): pending the approver.
    #[serde(rename = "cost_code.sent")]
    CodeSent,
    /// The ERP confirmed it: usable there from now on.
    #[serde(rename = "cost_code.synced")]
    CodeSynced,
    #[serde(rename = "cost_code.rejected")]
    CodeRejected,
    /// The ERP refused it, or could not be reached until the export gave up.
    #[serde(rename = "cost_code.failed")]
    CodeFailed,
    #[serde(rename = "export_job.done")]
    ExportJobDone,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::CodeCreated,
        EventType::CodeUpdated,
        EventType::CodeSent,
        EventType::CodeSynced,
        EventType::CodeRejected,
        EventType::CodeFailed,
        EventType::ExportJobDone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::CodeCreated => "cost_code.created",
            EventType::CodeUpdated => "cost_code.updated",
            EventType::CodeSent => "cost_code.sent",
            EventType::CodeSynced => "cost_code.synced",
            EventType::CodeRejected => "cost_code.rejected",
            EventType::CodeFailed => "cost_code.failed",
            EventType::ExportJobDone => "export_job.done",
        }
    }

    pub fn parse(s: &str) -> Result<EventType, UnknownState> {
        decode(&Self::ALL, Self::as_str, "event type", s)
    }

    /// The event a code's arrival in `state` after an export tells of, if any.
    pub fn of_outcome(state: crate::SyncState) -> Option<EventType> {
        match state {
            crate::SyncState::Synced => Some(EventType::CodeSynced),
            crate::SyncState::Failed => Some(EventType::CodeFailed),
            _ => None,
        }
    }
}

crate::queue::decode_stored!(EventType => "event type", DeliveryStatus => "event delivery");

/// A set of event types as stored on a subscription: each name between spaces
/// (` cost_code.sent export_job.done `), so one `LIKE '% cost_code.sent %'` finds a subscriber.
pub fn stored_types(types: &[EventType]) -> String {
    let mut names: Vec<&str> = EventType::ALL
        .iter()
        .filter(|t| types.contains(t))
        .map(|t| t.as_str())
        .collect();
    names.dedup();
    format!(" {} ", names.join(" "))
}

/// The pattern that finds subscribers of `t` in [`stored_types`].
pub fn types_pattern(t: EventType) -> String {
    format!("% {} %", t.as_str())
}

/// Reads [`stored_types`] back; an unknown name is an error, not skipped.
pub fn parse_stored_types(stored: &str) -> Result<Vec<EventType>, UnknownState> {
    stored.split_whitespace().map(EventType::parse).collect()
}

/// One event for one subscriber: pending until its batch is delivered, failed once delivery
/// gave up (until someone redelivers it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 3] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_stored_between_spaces_and_read_back() {
        let stored = stored_types(&[EventType::ExportJobDone, EventType::CodeSent]);
        assert_eq!(stored, " cost_code.sent export_job.done ");
        assert!(stored.contains(&types_pattern(EventType::CodeSent).replace('%', "")));
        assert_eq!(
            parse_stored_types(&stored).unwrap(),
            [EventType::CodeSent, EventType::ExportJobDone]
        );
        assert!(parse_stored_types(" cost_code.gone ").is_err());
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()).unwrap(), t);
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }
}
