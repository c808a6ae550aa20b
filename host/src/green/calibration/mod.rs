//! Calibration: per-service factors that multiply the proxy energy per
//! operation, so a cluster whose services were once measured scores closer
//! to reality even without a live scraper. `[green] calibration_file` names
//! the TOML the daemon and `analyze` read; `perf-sentinel calibrate`
//! derives it from a trace file and a measured power or energy CSV
//! ([`measured`], [`derive`]).

pub mod derive;
pub mod measured;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use thiserror::Error;
use toml::{Table, Value};

/// The largest calibration file read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Factors outside this range are refused: beyond it the proxy model, not
/// the service, is what is wrong.
pub const FACTOR_RANGE: std::ops::RangeInclusive<f64> = 0.001..=1000.0;
/// The file format this build writes and reads.
pub const VERSION: i64 = 1;

/// Per-service factors on the proxy energy per operation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calibration {
    /// Where it was read from, for `/api/energy` and messages.
    pub source: Option<PathBuf>,
    pub factors: BTreeMap<String, f64>,
}

#[derive(Debug, Error)]
pub enum CalibrationError {
    #[error("cannot read calibration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("calibration file {path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("calibration file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Calibration {
    /// The factor of `service`; 1 when it was not calibrated.
    pub fn factor(&self, service: &str) -> f64 {
        self.factors.get(service).copied().unwrap_or(1.0)
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, CalibrationError> {
        use std::io::Read as _;
        let read_err = |source| CalibrationError::Read {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut text = String::new();
        // One byte past the cap tells "too large" from "exactly the cap".
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read_err)?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(CalibrationError::TooLarge {
                path: path.to_owned(),
            });
        }
        let mut c = Self::parse(&text).map_err(|message| CalibrationError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        c.source = Some(path.to_owned());
        Ok(c)
    }

    /// Parses the TOML text; the message names the offending key.
    pub fn parse(text: &str) -> Result<Self, String> {
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| crate::config::fold_parse_error(text, &e))?;
        let mut factors = BTreeMap::new();
        for (key, value) in &table {
            match (key.as_str(), value) {
                ("version", Value::Integer(VERSION)) => {}
                ("version", other) => {
                    return Err(format!("`version` must be {VERSION}, got {}", short(other)));
                }
                ("factors", Value::Table(t)) => {
                    for (service, v) in t {
                        let f = match v {
                            Value::Float(f) => *f,
                            Value::Integer(i) => *i as f64,
                            other => {
                                return Err(format!(
                                    "`factors.{service}` must be a number, got {}",
                                    short(other)
                                ));
                            }
                        };
                        if !FACTOR_RANGE.contains(&f) {
                            return Err(format!(
                                "`factors.{service}` = {f} is outside {}..={}",
                                FACTOR_RANGE.start(),
                                FACTOR_RANGE.end()
                            ));
                        }
                        factors.insert(service.clone(), f);
                    }
                }
                ("factors", other) => {
                    return Err(format!("`factors` must be a table, got {}", short(other)));
                }
                (other, _) => {
                    return Err(format!(
                        "unknown key `{other}` (expected `version` and `[factors]`)"
                    ));
                }
            }
        }
        Ok(Self {
            source: None,
            factors,
        })
    }

    /// The file as `calibrate` writes it; `header` lines become comments.
    pub fn to_toml(&self, header: &[String]) -> String {
        let mut out = String::new();
        for line in header {
            // A comment line must not end early: the header may quote file
            // names, which may hold anything.
            let line: String = line.chars().filter(|c| !c.is_control()).collect();
            let _ = writeln!(out, "# {line}");
        }
        let _ = writeln!(out, "version = {VERSION}\n\n[factors]");
        let mut t = Table::new();
        for (service, f) in &self.factors {
            t.insert(service.clone(), Value::Float(*f));
        }
        // toml quotes keys that need it.
        out.push_str(&toml::to_string(&t).unwrap_or_default());
        out
    }
}

fn short(v: &Value) -> &'static str {
    v.type_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_read_back_the_same_factors() {
        let c = Calibration {
            source: None,
            factors: BTreeMap::from([
                ("checkout".to_owned(), 1.75),
                ("odd \"name\"\n".to_owned(), 0.5),
            ]),
        };
        let text = c.to_toml(&["from traces.json\nand power.csv".to_owned()]);
        assert!(text.starts_with("# from traces.jsonand power.csv\nversion = 1\n"));
        assert_eq!(Calibration::parse(&text).unwrap(), c);
        assert_eq!(c.factor("checkout"), 1.75);
        assert_eq!(c.factor("elsewhere"), 1.0);
    }

    #[test]
    fn bad_files_are_refused_naming_the_key() {
        for (text, needle) in [
            ("version = 2", "`version` must be 1, got integer"),
            (
                "[factors]\na = \"x\"",
                "`factors.a` must be a number, got string",
            ),
            ("[factors]\na = 0.0", "`factors.a` = 0 is outside"),
            ("[factors]\na = nan", "`factors.a` = NaN is outside"),
            ("[factors]\na = 1e9", "is outside"),
            ("factors = 3", "`factors` must be a table"),
            ("scale = 3", "unknown key `scale`"),
            ("[factors", "line 1"),
        ] {
            let e = Calibration::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        // Integers are numbers too.
        assert_eq!(
            Calibration::parse("[factors]\na = 2").unwrap().factor("a"),
            2.0
        );
    }

    #[test]
    fn load_names_the_file_and_caps_its_size() {
        let dir = crate::acks::testutil::TempDir::new("calibration");
        let missing = dir.join("none.toml");
        let e = Calibration::load(&missing).unwrap_err().to_string();
        assert!(e.contains("none.toml"), "{e}");
        let big = dir.join("big.toml");
        std::fs::write(&big, "#".repeat(MAX_FILE_BYTES as usize + 1)).unwrap();
        assert!(matches!(
            Calibration::load(&big),
            Err(CalibrationError::TooLarge { .. })
        ));
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[factors]\nx = -1").unwrap();
        let e = Calibration::load(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.toml") && e.contains("factors.x"), "{e}");
        let good = dir.join("good.toml");
        std::fs::write(&good, "version = 1\n[factors]\nx = 3.5").unwrap();
        let c = Calibration::load(&good).unwrap();
        assert_eq!(c.factor("x"), 3.5);
        assert_eq!(c.source.as_deref(), Some(good.as_path()));
    }
}
