//! The measured side of a calibration: a CSV of power samples (watts) or
//! energy readings (kWh), for the whole system or per service.
//!
//! The header names the columns: `timestamp`, then `watts` or `kwh`, then
//! optionally `service`. Timestamps are RFC 3339 or Unix seconds. Watts are
//! integrated over time (linear between samples); a kWh row is the energy
//! of the interval that ends at its timestamp.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The largest CSV read.
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// Rows read at most.
pub const MAX_ROWS: usize = 5_000_000;

/// What the value column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Watts,
    Kwh,
}

/// One reading: seconds since the epoch, and the value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at_s: f64,
    pub value: f64,
}

/// Every reading, by series: the service, or `None` for rows without one.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub unit: Unit,
    pub series: BTreeMap<Option<String>, Vec<Sample>>,
}

#[derive(Debug, Error)]
pub enum MeasuredError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Measured {
    /// Reads the CSV at `path`.
    pub fn load(path: &Path) -> Result<Self, MeasuredError> {
        let meta = std::fs::metadata(path).map_err(|source| MeasuredError::Read {
            path: path.to_owned(),
            source,
        })?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(MeasuredError::TooLarge {
                path: path.to_owned(),
            });
        }
        let bytes = std::fs::read(path).map_err(|source| MeasuredError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&bytes).map_err(|message| MeasuredError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses CSV bytes; the message names the line and column.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(bytes);
        let headers = reader
            .headers()
            .map_err(|e| format!("cannot read the header: {e}"))?
            .clone();
        let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let at = column("timestamp").ok_or("the header has no `timestamp` column")?;
        let (unit, value) = match (column("watts"), column("kwh")) {
            (Some(w), None) => (Unit::Watts, w),
            (None, Some(k)) => (Unit::Kwh, k),
            (Some(_), Some(_)) => return Err("the header has both `watts` and `kwh`".into()),
            (None, None) => {
                return Err("the header has neither a `watts` nor a `kwh` column".into());
            }
        };
        let service = column("service");
        let mut series: BTreeMap<Option<String>, Vec<Sample>> = BTreeMap::new();
        let mut rows = 0usize;
        for record in reader.records() {
            let record = record.map_err(|e| e.to_string())?;
            let line = record.position().map_or(0, |p| p.line());
            rows += 1;
            if rows > MAX_ROWS {
                return Err(format!("more than {MAX_ROWS} rows"));
            }
            let field = |i: usize| record.get(i).unwrap_or("");
            let at_s = parse_timestamp(field(at)).ok_or_else(|| {
                format!(
                    "line {line}: `{}` is not a timestamp (RFC 3339 or Unix seconds)",
                    clip(field(at))
                )
            })?;
            let v: f64 = field(value)
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    format!(
                        "line {line}: `{}` is not a non-negative number",
                        clip(field(value))
                    )
                })?;
            let name = service
                .map(field)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            series
                .entry(name)
                .or_default()
                .push(Sample { at_s, value: v });
        }
        if rows == 0 {
            return Err("no rows after the header".into());
        }
        for samples in series.values_mut() {
            samples.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        }
        Ok(Self { unit, series })
    }

    /// The energy of a series between `from_s` and `to_s`, in kWh.
    pub fn energy_kwh(&self, samples: &[Sample], from_s: f64, to_s: f64) -> f64 {
        match self.unit {
            Unit::Kwh => samples
                .iter()
                .filter(|s| s.at_s > from_s && s.at_s <= to_s)
                .map(|s| s.value)
                .sum(),
            Unit::Watts => {
                let mut joules = 0.0;
                for pair in samples.windows(2) {
                    let (a, b) = (pair[0], pair[1]);
                    let (lo, hi) = (a.at_s.max(from_s), b.at_s.min(to_s));
                    if hi <= lo || b.at_s <= a.at_s {
                        continue;
                    }
                    let watts_at =
                        |t: f64| a.value + (b.value - a.value) * (t - a.at_s) / (b.at_s - a.at_s);
                    joules += (watts_at(lo) + watts_at(hi)) / 2.0 * (hi - lo);
                }
                joules / 3.6e6
            }
        }
    }
}

fn parse_timestamp(text: &str) -> Option<f64> {
    if let Ok(s) = text.parse::<f64>() {
        return s.is_finite().then_some(s);
    }
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos() as f64 / 1e9)
}

/// Keeps messages short and on one line whatever the file holds.
fn clip(text: &str) -> String {
    text.chars()
        .take(40)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watts_integrate_linearly_inside_the_window() {
        let m = Measured::parse(b"timestamp,watts\n0,100\n10,100\n20,300\n").unwrap();
        assert_eq!(m.unit, Unit::Watts);
        let s = &m.series[&None];
        // 100 W for 10 s, then a ramp 100 -> 300 W for 10 s: 1000 + 2000 J.
        let kwh = m.energy_kwh(s, 0.0, 20.0);
        assert!((kwh - 3000.0 / 3.6e6).abs() < 1e-15, "{kwh}");
        // Half the ramp, 15..20 s: from 200 to 300 W, 1250 J.
        let kwh = m.energy_kwh(s, 15.0, 99.0);
        assert!((kwh - 1250.0 / 3.6e6).abs() < 1e-15, "{kwh}");
        assert_eq!(m.energy_kwh(s, 30.0, 40.0), 0.0);
    }

    #[test]
    fn kwh_rows_count_when_their_interval_ends_inside_the_window() {
        let m = Measured::parse(
            b"Timestamp,kWh,Service\n2026-01-01T00:00:10Z,0.5,api\n2026-01-01T00:00:20Z,0.25,api\n1767225630,1,db\n",
        )
        .unwrap();
        assert_eq!(m.unit, Unit::Kwh);
        let api = &m.series[&Some("api".to_owned())];
        let t0 = 1_767_225_600.0; // 2026-01-01T00:00:00Z
        assert_eq!(m.energy_kwh(api, t0, t0 + 20.0), 0.75);
        assert_eq!(m.energy_kwh(api, t0 + 10.0, t0 + 20.0), 0.25);
        assert_eq!(
            m.energy_kwh(&m.series[&Some("db".to_owned())], t0, t0 + 60.0),
            1.0
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_line() {
        for (text, needle) in [
            ("", "no `timestamp` column"),
            ("timestamp,watts\n", "no rows"),
            ("time,watts\n1,2\n", "no `timestamp` column"),
            ("timestamp,joules\n1,2\n", "neither a `watts` nor a `kwh`"),
            ("timestamp,watts,kwh\n1,2,3\n", "both"),
            (
                "timestamp,watts\n1,2\nyesterday,3\n",
                "line 3: `yesterday` is not a timestamp",
            ),
            (
                "timestamp,watts\n1,-2\n",
                "line 2: `-2` is not a non-negative number",
            ),
            ("timestamp,watts\n1,NaN\n", "is not a non-negative number"),
            ("timestamp,watts\n1,\x1b[31m\n", "`?[31m` is not"),
            ("timestamp,watts\n1,2,3\n", "found record with 3 fields"),
        ] {
            let e = Measured::parse(text.as_bytes()).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}
