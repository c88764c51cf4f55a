//! Seconds since the Unix epoch as a UTC calendar date (proleptic Gregorian), without a
//! date library: `info` shows CRASHTIME and the kdump header's timestamp this way.

/// The calendar date and time of `secs` seconds after 1970-01-01T00:00:00Z:
/// (year, month 1-12, day 1-31, hour, minute, second). `None` outside the years 0-9999
/// (a corrupted field, not a date worth printing).
pub fn civil(secs: i64) -> Option<(i64, u32, u32, u32, u32, u32)> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Count from 0000-03-01, so that the leap day is the last day of a counted year; a
    // 400-year era has 146,097 days.
    let from_march = days.checked_add(719_468)?;
    let era = from_march.div_euclid(146_097);
    let day_of_era = from_march.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: 153 days per five months.
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some((
        year,
        month as u32,
        day as u32,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    ))
}

/// RFC 3339 in UTC: `2024-05-01T12:34:56Z`.
pub fn rfc3339(secs: i64) -> Option<String> {
    let (y, mo, d, h, mi, s) = civil(secs)?;
    Some(format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"))
}

/// For people: `2024-05-01 12:34:56 UTC`.
pub fn human(secs: i64) -> Option<String> {
    let (y, mo, d, h, mi, s) = civil(secs)?;
    Some(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        // Values checked with `date -u -d @SECS`.
        assert_eq!(rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(951_868_799).unwrap(), "2000-02-29T23:59:59Z");
        assert_eq!(rfc3339(1_709_251_199).unwrap(), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(1_735_689_600).unwrap(), "2025-01-01T00:00:00Z");
        assert_eq!(rfc3339(4_107_542_400).unwrap(), "2100-03-01T00:00:00Z");
        assert_eq!(rfc3339(-1).unwrap(), "1969-12-31T23:59:59Z");
        assert_eq!(human(1_700_000_000).unwrap(), "2023-11-14 22:13:20 UTC");
        assert_eq!(rfc3339(253_402_300_799).unwrap(), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        // Walk 1968..2104 day by day: the date must advance by exactly one calendar day.
        let mut prev = civil(-2 * 365 * 86_400).unwrap();
        for day in (-2 * 365 + 1)..(134 * 365) {
            let cur = civil(day * 86_400).unwrap();
            let (y, m, d) = (prev.0, prev.1, prev.2);
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m as usize - 1];
            let next = if d < len {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            assert_eq!((cur.0, cur.1, cur.2), next, "day {day}");
            prev = cur;
        }
    }

    #[test]
    fn corrupted_values_are_not_dates() {
        assert_eq!(civil(i64::MAX), None);
        assert_eq!(civil(i64::MIN), None);
        assert_eq!(civil(253_402_300_800), None); // year 10000
        assert_eq!(civil(-62_167_219_201), None); // year -1
    }
}
