//! The time zone of the daily summary hour: UTC, a fixed offset, or an IANA zone read from the
//! system tz database (so "8 in the morning" follows daylight saving time).
use time::{OffsetDateTime, UtcOffset};

#[derive(Debug, Clone)]
pub enum Zone {
    Fixed(UtcOffset),
    Named(jiff::tz::TimeZone),
}

impl Zone {
    /// `UTC`, `+01:00` / `-05:30` / `+02`, or a name like `Europe/Paris`.
    pub fn parse(text: &str) -> Result<Zone, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("utc") || t == "Z" {
            return Ok(Zone::Fixed(UtcOffset::UTC));
        }
        if let Some(rest) = t.strip_prefix('+').or_else(|| t.strip_prefix('-')) {
            let bad = || format!("time_zone '{t}' is not an offset like +01:00");
            let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
            let h: i8 = h.parse().map_err(|_| bad())?;
            let m: i8 = m.parse().map_err(|_| bad())?;
            let sign = if t.starts_with('-') { -1 } else { 1 };
            return UtcOffset::from_hms(sign * h, sign * m, 0)
                .map(Zone::Fixed)
                .map_err(|_| bad());
        }
        jiff::tz::TimeZone::get(t)
            .map(Zone::Named)
            .map_err(|e| format!("time_zone '{t}' is unknown here: {e}"))
    }

    /// `t` as a local time in this zone.
    pub fn local(&self, t: OffsetDateTime) -> OffsetDateTime {
        let offset = match self {
            Zone::Fixed(o) => *o,
            Zone::Named(tz) => jiff::Timestamp::from_second(t.unix_timestamp())
                .ok()
                .and_then(|ts| UtcOffset::from_whole_seconds(tz.to_offset(ts).seconds()).ok())
                .unwrap_or(UtcOffset::UTC),
        };
        t.to_offset(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn offsets_and_names() {
        let t = datetime!(2026-07-01 06:30 UTC);
        let hour = |z: &str| Zone::parse(z).unwrap().local(t).hour();
        assert_eq!(hour("UTC"), 6);
        assert_eq!(hour("+01:00"), 7);
        assert_eq!(hour("-05:30"), 1);
        assert_eq!(hour("+02"), 8);
        assert!(Zone::parse("+1:xx").is_err());
        assert!(Zone::parse("Mars/Olympus").is_err());
        if std::path::Path::new("/usr/share/zoneinfo/Europe/Paris").exists() {
            // Summer time in July, winter time in January.
            assert_eq!(hour("Europe/Paris"), 8);
            let jan = Zone::parse("Europe/Paris")
                .unwrap()
                .local(datetime!(2026-01-15 06:30 UTC));
            assert_eq!(jan.hour(), 7);
        }
    }
}
