//! UTC calendar windows for periodic budgets: which day, ISO week (from
//! Monday) and month an instant falls in, and when each window ends. Pure
//! integer arithmetic on milliseconds since the Unix epoch.

use serde::{Deserialize, Serialize};

const DAY_MS: u64 = 86_400_000;

/// A budget period that resets at the start of each UTC day, week or month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// Resets at 00:00 UTC.
    Day,
    /// Resets at 00:00 UTC on Monday.
    Week,
    /// Resets at 00:00 UTC on the 1st.
    Month,
}

impl Period {
    /// Every period, in the order budgets list them.
    pub const ALL: [Period; 3] = [Period::Day, Period::Week, Period::Month];

    /// The index of the window `now_ms` falls in (comparable only within one period).
    pub fn window(self, now_ms: u64) -> u64 {
        let days = now_ms / DAY_MS;
        match self {
            Period::Day => days,
            // 1970-01-01 was a Thursday; Monday 1969-12-29 starts week 0.
            Period::Week => (days + 3) / 7,
            Period::Month => {
                let (y, m, _) = civil_from_days(days);
                y * 12 + (m - 1)
            }
        }
    }

    /// When window `index` ends (the next window's first millisecond).
    pub fn window_end_ms(self, index: u64) -> u64 {
        let days = match self {
            Period::Day => index + 1,
            Period::Week => (index + 1) * 7 - 3,
            Period::Month => {
                let next = index + 1;
                days_from_civil(next / 12, next % 12 + 1, 1)
            }
        };
        days * DAY_MS
    }

    /// Its name in limits and errors.
    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (`year` ≥ 1970).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    // Shift the year to start in March so leap days fall at its end.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of `days` since 1970-01-01.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DD` of the UTC day `now_ms` falls in (usage rows are kept per day).
pub fn day_label(now_ms: u64) -> String {
    let (y, m, d) = civil_from_days(now_ms / DAY_MS);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Vectors from Python: int(datetime(Y,M,D,tzinfo=timezone.utc).timestamp()*1000).
    const DEC_3_2026: u64 = 1_796_256_000_000;
    const DEC_7_2026_MONDAY: u64 = 1_796_601_600_000;
    const JAN_1_2027: u64 = 1_798_761_600_000;
    const MAR_1_2028: u64 = 1_835_481_600_000;
    const FEB_29_2028: u64 = 1_835_395_200_000;

    #[test]
    fn fixed_dates() {
        assert_eq!(day_label(DEC_3_2026 + 5), "2026-12-03");
        assert_eq!(day_label(FEB_29_2028 + DAY_MS - 1), "2028-02-29");
        assert_eq!(day_label(MAR_1_2028), "2028-03-01");
        let dec = Period::Month.window(DEC_3_2026);
        assert_eq!(Period::Month.window_end_ms(dec), JAN_1_2027);
        let feb = Period::Month.window(FEB_29_2028);
        assert_eq!(Period::Month.window_end_ms(feb), MAR_1_2028);
        let week = Period::Week.window(DEC_3_2026);
        assert_eq!(Period::Week.window_end_ms(week), DEC_7_2026_MONDAY);
        assert_eq!(Period::Week.window(DEC_7_2026_MONDAY), week + 1);
        assert_eq!(Period::Week.window(DEC_7_2026_MONDAY - 1), week);
        let day = Period::Day.window(DEC_3_2026);
        assert_eq!(Period::Day.window_end_ms(day), DEC_3_2026 + DAY_MS);
    }

    proptest! {
        #[test]
        fn civil_round_trips(days in 0u64..200_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn an_instant_lies_before_its_windows_end(now in 0u64..10_000_000_000_000) {
            for p in Period::ALL {
                let w = p.window(now);
                let end = p.window_end_ms(w);
                prop_assert!(end > now);
                prop_assert_eq!(p.window(end), w + 1);
                prop_assert_eq!(p.window(end - 1), w);
            }
        }
    }
}
