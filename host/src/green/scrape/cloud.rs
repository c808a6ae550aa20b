//! CPU utilisation per service from a Prometheus server's instant query
//! API (`/api/v1/query`), turned into watts with the instance type's idle
//! and full-load power: `idle + (max - idle) x CPU`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ParseError;

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    error: Option<String>,
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    metric: BTreeMap<String, String>,
    /// `[unix seconds, "value"]`.
    value: (f64, String),
}

/// CPU utilisation (0..=1) per service named by `service_label`. Values
/// above 1 are read as percentages.
pub fn parse(body: &[u8], service_label: &str) -> Result<BTreeMap<String, f64>, ParseError> {
    let a: Answer = serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    if a.status != "success" {
        return Err(ParseError::Invalid(format!(
            "query failed: {}",
            a.error.unwrap_or_else(|| a.status.clone())
        )));
    }
    let data = a.data.ok_or(ParseError::Missing("data"))?;
    if data.result_type != "vector" {
        return Err(ParseError::Invalid(format!(
            "expected an instant vector, got {}",
            data.result_type
        )));
    }
    let mut out = BTreeMap::new();
    for s in data.result {
        let Some(service) = s.metric.get(service_label) else {
            continue;
        };
        let Ok(v) = s.value.1.parse::<f64>() else {
            return Err(ParseError::Invalid(format!(
                "value {:?} is not a number",
                s.value.1
            )));
        };
        if !v.is_finite() || v < 0.0 {
            continue;
        }
        let cpu = if v > 1.0 { v / 100.0 } else { v };
        out.insert(service.clone(), cpu.min(1.0));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_instant_vector() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
{"metric":{"service":"orders","namespace":"shop"},"value":[1764120000.123,"0.42"]},
{"metric":{"service":"billing"},"value":[1764120000.123,"63.5"]},
{"metric":{"job":"node"},"value":[1764120000.123,"0.9"]},
{"metric":{"service":"idle"},"value":[1764120000.123,"NaN"]}]}}"#;
        let cpu = parse(body, "service").unwrap();
        assert_eq!(cpu.len(), 2);
        assert_eq!(cpu["orders"], 0.42);
        assert!((cpu["billing"] - 0.635).abs() < 1e-12);
    }

    #[test]
    fn refuses_errors_and_other_shapes() {
        let e = parse(
            br#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#,
            "service",
        )
        .unwrap_err();
        assert!(e.to_string().contains("parse error at char 3"), "{e}");
        assert!(
            parse(
                br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
                "service"
            )
            .is_err()
        );
        assert!(parse(b"{", "service").is_err());
    }
}
