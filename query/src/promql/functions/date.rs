//! `minute()`, `hour()`, `day_of_week()`, `day_of_month()`, `day_of_year()`, `days_in_month()`,
//! `month()` and `year()`.
//!
//! Prometheus computes them with Go's `time.Unix(int64(v), 0).UTC()`, so this reproduces Go's
//! calendar arithmetic (its `absDate` and `Date`, as of the Go releases Prometheus 2.x was built
//! with) on wrapping unsigned integers. That matters only where Go's arithmetic overflows: a
//! value that is NaN, infinite or beyond ±2^63 seconds converts to `i64::MIN` (what amd64
//! does), and Prometheus then reports whatever date Go computes for it; so do we.

use tributary_storage::types::TimestampMs;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DateFn {
    Minute,
    Hour,
    DayOfWeek,
    DayOfMonth,
    DayOfYear,
    DaysInMonth,
    Month,
    Year,
}

impl DateFn {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "minute" => DateFn::Minute,
            "hour" => DateFn::Hour,
            "day_of_week" => DateFn::DayOfWeek,
            "day_of_month" => DateFn::DayOfMonth,
            "day_of_year" => DateFn::DayOfYear,
            "days_in_month" => DateFn::DaysInMonth,
            "month" => DateFn::Month,
            "year" => DateFn::Year,
            _ => return None,
        })
    }

    /// The function of a sample value, taken as Unix seconds.
    pub(crate) fn of_value(self, v: f64) -> f64 {
        self.of_unix_seconds(go_int64(v))
    }

    /// The function of an evaluation time (what the argument-less form uses).
    pub(crate) fn of_step_time(self, t: TimestampMs) -> f64 {
        self.of_unix_seconds(t / 1000)
    }

    fn of_unix_seconds(self, seconds: i64) -> f64 {
        let abs = seconds.wrapping_add(UNIX_TO_ABSOLUTE) as u64;
        let value = match self {
            DateFn::Minute => (abs % SECONDS_PER_HOUR) / SECONDS_PER_MINUTE,
            DateFn::Hour => (abs % SECONDS_PER_DAY) / SECONDS_PER_HOUR,
            // The absolute epoch is a Monday; Go counts weekdays from Sunday.
            DateFn::DayOfWeek => (abs.wrapping_add(SECONDS_PER_DAY) % SECONDS_PER_WEEK) / SECONDS_PER_DAY,
            DateFn::DayOfMonth => return abs_date(abs).day as f64,
            DateFn::DayOfYear => return (abs_date(abs).yday + 1) as f64,
            DateFn::Month => return abs_date(abs).month as f64,
            DateFn::Year => return abs_date(abs).year as f64,
            DateFn::DaysInMonth => {
                // Go: 32 - time.Date(year, month, 32, ...).Day(), day 32 overflowing into the
                // next month.
                let date = abs_date(abs);
                return (32 - abs_date(go_date_abs(date.year, date.month, 32)).day) as f64;
            }
        };
        value as f64
    }
}

/// Go's `int64(f)` on amd64: truncation toward zero; NaN and values out of range become the
/// "integer indefinite" `i64::MIN`.
pub(crate) fn go_int64(v: f64) -> i64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if v.is_nan() || !(-TWO_POW_63..TWO_POW_63).contains(&v) {
        i64::MIN
    } else {
        v as i64
    }
}

const SECONDS_PER_MINUTE: u64 = 60;
const SECONDS_PER_HOUR: u64 = 60 * SECONDS_PER_MINUTE;
const SECONDS_PER_DAY: u64 = 24 * SECONDS_PER_HOUR;
const SECONDS_PER_WEEK: u64 = 7 * SECONDS_PER_DAY;
const DAYS_PER_400_YEARS: u64 = 365 * 400 + 97;
const DAYS_PER_100_YEARS: u64 = 365 * 100 + 24;
const DAYS_PER_4_YEARS: u64 = 365 * 4 + 1;
/// Go's `absoluteZeroYear`: the absolute epoch is 1 January of this year.
const ABSOLUTE_ZERO_YEAR: i64 = -292_277_022_399;
/// Go's `unixToInternal + internalToAbsolute`: seconds from the absolute epoch to 1970.
const UNIX_TO_ABSOLUTE: i64 = 62_135_596_800 + 9_223_371_966_579_724_800;
/// Days before each month in a non-leap year (Go's `daysBefore`).
const DAYS_BEFORE: [u64; 13] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];

#[derive(Debug, PartialEq, Eq)]
struct Date {
    year: i64,
    month: u64,
    day: u64,
    /// Day of the year, from 0.
    yday: u64,
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Go's `absDate`: the calendar date of an absolute time.
fn abs_date(abs: u64) -> Date {
    let mut d = abs / SECONDS_PER_DAY;
    let mut n = d / DAYS_PER_400_YEARS;
    let mut y = 400 * n;
    d -= DAYS_PER_400_YEARS * n;
    // The last 100-year cycle has an extra leap day; `n >> 2` cuts 4 back to 3.
    n = d / DAYS_PER_100_YEARS;
    n -= n >> 2;
    y += 100 * n;
    d -= DAYS_PER_100_YEARS * n;
    n = d / DAYS_PER_4_YEARS;
    y += 4 * n;
    d -= DAYS_PER_4_YEARS * n;
    n = d / 365;
    n -= n >> 2;
    y += n;
    d -= 365 * n;
    let year = (y as i64).wrapping_add(ABSOLUTE_ZERO_YEAR);
    let yday = d;
    let mut day = yday;
    if is_leap(year) {
        if day == 31 + 29 - 1 {
            return Date {
                year,
                month: 2,
                day: 29,
                yday,
            };
        }
        if day > 31 + 29 - 1 {
            day -= 1;
        }
    }
    // Assume 31-day months, then correct the estimate by at most one month.
    let mut month = (day / 31) as usize;
    let end = DAYS_BEFORE[month + 1];
    let begin = if day >= end {
        month += 1;
        end
    } else {
        DAYS_BEFORE[month]
    };
    Date {
        year,
        month: month as u64 + 1,
        day: day - begin + 1,
        yday,
    }
}

/// Go's `time.Date(year, month, day, 0, 0, 0, 0, time.UTC)` as an absolute time (`month` in
/// 1..=12, `day` from 1, overflowing into later months).
fn go_date_abs(year: i64, month: u64, day: u64) -> u64 {
    let mut y = year.wrapping_sub(ABSOLUTE_ZERO_YEAR) as u64;
    let mut n = y / 400;
    y -= 400 * n;
    let mut d = DAYS_PER_400_YEARS.wrapping_mul(n);
    n = y / 100;
    y -= 100 * n;
    d = d.wrapping_add(DAYS_PER_100_YEARS * n);
    n = y / 4;
    y -= 4 * n;
    d = d.wrapping_add(DAYS_PER_4_YEARS * n);
    d = d.wrapping_add(365 * y);
    d = d.wrapping_add(DAYS_BEFORE[(month - 1) as usize]);
    if is_leap(year) && month >= 3 {
        d = d.wrapping_add(1);
    }
    d = d.wrapping_add(day - 1);
    d.wrapping_mul(SECONDS_PER_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(seconds: i64) -> [f64; 8] {
        [
            DateFn::Minute,
            DateFn::Hour,
            DateFn::DayOfWeek,
            DateFn::DayOfMonth,
            DateFn::DayOfYear,
            DateFn::DaysInMonth,
            DateFn::Month,
            DateFn::Year,
        ]
        .map(|f| f.of_unix_seconds(seconds))
    }

    #[test]
    fn ordinary_dates() {
        // 2024-02-29T13:45:10Z, a Thursday, day 60 of a leap year.
        assert_eq!(all(1_709_214_310), [45.0, 13.0, 4.0, 29.0, 60.0, 29.0, 2.0, 2024.0]);
        // The epoch: Thursday 1970-01-01.
        assert_eq!(all(0), [0.0, 0.0, 4.0, 1.0, 1.0, 31.0, 1.0, 1970.0]);
        // One second before: Wednesday 1969-12-31T23:59:59.
        assert_eq!(all(-1), [59.0, 23.0, 3.0, 31.0, 365.0, 31.0, 12.0, 1969.0]);
        // 2100 is not a leap year; 2000 is.
        assert_eq!(DateFn::DaysInMonth.of_unix_seconds(4_107_456_000), 28.0); // 2100-02-28
        assert_eq!(DateFn::DaysInMonth.of_unix_seconds(951_782_400), 29.0); // 2000-02-29
        assert_eq!(DateFn::DayOfYear.of_unix_seconds(978_220_800), 366.0); // 2000-12-31
    }

    #[test]
    fn values_convert_like_go_on_amd64() {
        assert_eq!(go_int64(1.9), 1);
        assert_eq!(go_int64(-1.9), -1);
        assert_eq!(go_int64(f64::NAN), i64::MIN);
        assert_eq!(go_int64(f64::INFINITY), i64::MIN);
        assert_eq!(go_int64(-1e300), i64::MIN);
        // The argument-less forms truncate the evaluation time's milliseconds.
        assert_eq!(DateFn::Minute.of_step_time(119_999), 1.0);
        // Go's answer for i64::MIN seconds, which wraps around its absolute epoch.
        assert_eq!(DateFn::Hour.of_value(f64::NAN), DateFn::Hour.of_unix_seconds(i64::MIN));
    }
}
