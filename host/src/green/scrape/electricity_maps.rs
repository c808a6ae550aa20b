//! Electricity Maps' real-time grid intensity of one zone
//! (`GET {endpoint}/carbon-intensity/latest?zone=Z`, token in the
//! `auth-token` header): `carbonIntensity` in gCO2eq/kWh.

use serde::Deserialize;

use super::ParseError;

#[derive(Deserialize)]
struct Latest {
    zone: Option<String>,
    #[serde(rename = "carbonIntensity")]
    carbon_intensity: Option<f64>,
}

/// The path and query asking for `zone`'s latest intensity.
pub fn latest_url(endpoint: &str, zone: &str) -> String {
    let mut url = endpoint.trim_end_matches('/').to_owned();
    url.push_str("/carbon-intensity/latest?zone=");
    for b in zone.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// gCO2eq/kWh of `zone` now.
pub fn parse(body: &[u8], zone: &str) -> Result<f64, ParseError> {
    let l: Latest = serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    if let Some(z) = &l.zone
        && !z.eq_ignore_ascii_case(zone)
    {
        return Err(ParseError::Invalid(format!(
            "asked for zone {zone}, answered for {z}"
        )));
    }
    let g = l
        .carbon_intensity
        .ok_or(ParseError::Missing("carbonIntensity"))?;
    if g.is_finite() && (0.0..=5_000.0).contains(&g) {
        Ok(g)
    } else {
        Err(ParseError::Invalid(format!("{g} gCO2/kWh is out of range")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_latest_intensity() {
        let body = br#"{"zone":"FR","carbonIntensity":31,"datetime":"2026-11-26T02:00:00.000Z","updatedAt":"2026-11-26T01:45:12.345Z","createdAt":"2026-11-23T02:47:05.123Z","emissionFactorType":"lifecycle","isEstimated":true,"estimationMethod":"TIME_SLICER_AVERAGE"}"#;
        assert_eq!(parse(body, "FR").unwrap(), 31.0);
    }

    #[test]
    fn refuses_another_zone_a_missing_value_and_garbage() {
        assert!(parse(br#"{"zone":"DE","carbonIntensity":300}"#, "FR").is_err());
        assert!(matches!(
            parse(br#"{"zone":"FR","carbonIntensity":null}"#, "FR"),
            Err(ParseError::Missing(_))
        ));
        assert!(parse(br#"{"zone":"FR","carbonIntensity":-3}"#, "FR").is_err());
        assert!(parse(b"not json", "FR").is_err());
    }

    #[test]
    fn the_zone_is_escaped_into_the_query() {
        assert_eq!(
            latest_url("https://api.electricitymap.org/v3/", "US-CAL-CISO"),
            "https://api.electricitymap.org/v3/carbon-intensity/latest?zone=US-CAL-CISO"
        );
        assert_eq!(
            latest_url("http://h", "a&b"),
            "http://h/carbon-intensity/latest?zone=a%26b"
        );
    }
}
