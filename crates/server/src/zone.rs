//! Time zones: the company's (an IANA name people read every time in: pages, CSV downloads,
//! emails; the server's own when it set none) and the `[mail] time_zone` of the daily summary
//! hour (which may also be UTC or a fixed offset). Names come from the system tz database, so
//! times follow daylight saving time.
use jiff::tz::TimeZone;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// Each company's zone as every page needs it, kept for [`ZoneCache::FRESH`] so a page view
/// does not read it from the database (one query of every page's few). A change made through
/// this instance replaces it at once; one made through another instance on the same database
/// shows here within that time.
#[derive(Debug, Default)]
pub struct ZoneCache(Mutex<HashMap<i64, (Zone, Instant)>>);

impl ZoneCache {
    const FRESH: Duration = Duration::from_secs(30);

    pub fn get(&self, company: i64) -> Option<Zone> {
        let zones = self.0.lock().unwrap_or_else(|e| e.into_inner());
        zones
            .get(&company)
            .filter(|(_, at)| at.elapsed() < Self::FRESH)
            .map(|(zone, _)| zone.clone())
    }

    pub fn put(&self, company: i64, zone: Zone) {
        let mut zones = self.0.lock().unwrap_or_else(|e| e.into_inner());
        zones.insert(company, (zone, Instant::now()));
    }
}

#[derive(Debug, Clone)]
pub enum Zone {
    Fixed(UtcOffset),
    Named(TimeZone),
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
        Zone::named(t)
    }

    /// An IANA zone name (any case; kept as the database spells it), as a company sets it.
    pub fn named(text: &str) -> Result<Zone, String> {
        let t = text.trim();
        // A name is letters, digits and `/_+-`; anything else (a line break, a path) is no zone.
        let plausible = !t.is_empty()
            && t.len() <= 64
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
            && !t.contains("..");
        TimeZone::get(t)
            .ok()
            .filter(|tz| plausible && tz.iana_name().is_some())
            .map(Zone::Named)
            .ok_or_else(|| {
                format!(
                    "time_zone '{t}' is not a time zone name like Europe/Berlin or America/Chicago"
                )
            })
    }

    /// The server machine's own zone (the `TZ` variable or `/etc/localtime`).
    pub fn server() -> Zone {
        Zone::Named(TimeZone::system())
    }

    /// A company's zone from its stored setting: the server's when it set none, or when the
    /// stored name is no longer in this machine's tz database.
    pub fn company(stored: Option<&str>) -> Zone {
        stored
            .and_then(|name| Zone::named(name).ok())
            .unwrap_or_else(Zone::server)
    }

    /// How people read the zone: its IANA name (`Europe/Berlin`, `UTC`), or `UTC+01:00`.
    pub fn name(&self) -> String {
        match self {
            Zone::Fixed(o) if o.is_utc() => "UTC".to_owned(),
            Zone::Fixed(o) => format!("UTC{}", offset_text(*o)),
            Zone::Named(tz) => tz
                .iana_name()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("UTC{}", offset_text(self.offset_at(now())))),
        }
    }

    fn offset_at(&self, t: OffsetDateTime) -> UtcOffset {
        match self {
            Zone::Fixed(o) => *o,
            Zone::Named(tz) => jiff::Timestamp::from_second(t.unix_timestamp())
                .ok()
                .and_then(|ts| UtcOffset::from_whole_seconds(tz.to_offset(ts).seconds()).ok())
                .unwrap_or(UtcOffset::UTC),
        }
    }

    /// `t` as a local time in this zone.
    pub fn local(&self, t: OffsetDateTime) -> OffsetDateTime {
        t.to_offset(self.offset_at(t))
    }

    /// `t` as people read it, with the zone named: `30 Nov 2026 14:05 CET`, or with the IANA
    /// name where the zone has no lettered abbreviation (`30 Nov 2026 18:05 (Asia/Dubai)`).
    pub fn show(&self, t: OffsetDateTime) -> String {
        let l = self.local(t);
        let day = l
            .format(format_description!(
                "[day padding:none] [month repr:short] [year] [hour]:[minute]"
            ))
            .unwrap_or_else(|_| l.to_string());
        match self.abbreviation(t) {
            Some(a) => format!("{day} {a}"),
            None => format!("{day} ({})", self.name()),
        }
    }

    /// A lettered abbreviation like `CET`, `EST` or `UTC` in force at `t`; `None` for zones the
    /// database abbreviates as a bare offset (`+04`).
    fn abbreviation(&self, t: OffsetDateTime) -> Option<String> {
        let a = match self {
            Zone::Fixed(o) if o.is_utc() => "UTC".to_owned(),
            Zone::Fixed(_) => return None,
            Zone::Named(tz) => {
                let ts = jiff::Timestamp::from_second(t.unix_timestamp()).ok()?;
                tz.to_offset_info(ts).abbreviation().to_owned()
            }
        };
        a.chars().all(|c| c.is_ascii_alphabetic()).then_some(a)
    }

    /// `t` for a file people open in a spreadsheet: ISO 8601 local time with its offset
    /// (`2026-11-30T14:05:00+01:00`), so the value says its zone on its own.
    pub fn iso(&self, t: OffsetDateTime) -> String {
        let l = self.local(t);
        l.format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
        ))
        .unwrap_or_else(|_| l.to_string())
    }
}

/// Every zone name this machine's tz database knows, sorted, for the settings page's choices.
/// Read once: listing the database walks its folder.
pub fn names() -> &'static [String] {
    static NAMES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        let mut all: Vec<String> = jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_owned())
            .filter(|n| !n.starts_with("posix/") && !n.starts_with("right/"))
            .collect();
        all.sort();
        all.dedup();
        all
    });
    &NAMES
}

fn offset_text(o: UtcOffset) -> String {
    let (h, m, _) = o.as_hms();
    let sign = if o.is_negative() { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", h.abs(), m.abs())
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn has_tzdb() -> bool {
        std::path::Path::new("/usr/share/zoneinfo/Europe/Paris").exists()
    }

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
        if has_tzdb() {
            // Summer time in July, winter time in January.
            assert_eq!(hour("Europe/Paris"), 8);
            let jan = Zone::parse("Europe/Paris")
                .unwrap()
                .local(datetime!(2026-01-15 06:30 UTC));
            assert_eq!(jan.hour(), 7);
        }
    }

    #[test]
    fn times_name_their_zone() {
        let t = datetime!(2026-11-30 13:05:09 UTC);
        assert_eq!(Zone::parse("UTC").unwrap().show(t), "30 Nov 2026 13:05 UTC");
        assert_eq!(
            Zone::parse("+04:00").unwrap().show(t),
            "30 Nov 2026 17:05 (UTC+04:00)"
        );
        assert_eq!(
            Zone::parse("-05:30").unwrap().iso(t),
            "2026-11-30T07:35:09-05:30"
        );
        if has_tzdb() {
            let berlin = Zone::named("europe/berlin").unwrap();
            assert_eq!(berlin.name(), "Europe/Berlin");
            assert_eq!(berlin.show(t), "30 Nov 2026 14:05 CET");
            assert_eq!(berlin.iso(t), "2026-11-30T14:05:09+01:00");
            assert_eq!(
                Zone::named("Asia/Dubai").unwrap().show(t),
                "30 Nov 2026 17:05 (Asia/Dubai)"
            );
            assert!(names().iter().any(|n| n == "America/Chicago"));
        }
    }

    #[test]
    fn a_company_zone_is_a_name() {
        for bad in [
            "+01:00",
            "",
            "Europe/Berlin\nX",
            "../../etc/passwd",
            "Nowhere/Land",
        ] {
            let e = Zone::named(bad).unwrap_err();
            assert!(e.contains("is not a time zone name"), "{bad}: {e}");
        }
        // An unknown stored name falls back to the server's zone rather than failing a page.
        assert_eq!(
            Zone::company(Some("Nowhere/Land")).name(),
            Zone::server().name()
        );
    }
}
