//! Redfish chassis power, from either resource a BMC offers: the older
//! `Power` (`PowerControl[0].PowerConsumedWatts`) or the newer
//! `EnvironmentMetrics` (`PowerWatts.Reading`).

use serde::Deserialize;

use super::ParseError;

#[derive(Deserialize)]
struct Resource {
    #[serde(rename = "PowerControl", default)]
    power_control: Vec<PowerControl>,
    #[serde(rename = "PowerWatts")]
    power_watts: Option<Sensor>,
}

#[derive(Deserialize)]
struct PowerControl {
    #[serde(rename = "PowerConsumedWatts")]
    consumed: Option<f64>,
}

#[derive(Deserialize)]
struct Sensor {
    #[serde(rename = "Reading")]
    reading: Option<f64>,
}

/// The chassis power in watts.
pub fn parse(body: &[u8]) -> Result<f64, ParseError> {
    let r: Resource = serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    let watts = r
        .power_control
        .first()
        .and_then(|p| p.consumed)
        .or_else(|| r.power_watts.and_then(|s| s.reading))
        .ok_or(ParseError::Missing(
            "PowerControl/0/PowerConsumedWatts or PowerWatts/Reading",
        ))?;
    if watts.is_finite() && watts >= 0.0 {
        Ok(watts)
    } else {
        Err(ParseError::Invalid(format!("{watts} W is not a power")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_power_resource() {
        let body = br##"{
  "@odata.id": "/redfish/v1/Chassis/1U/Power",
  "@odata.type": "#Power.v1_7_1.Power",
  "Id": "Power",
  "Name": "Power",
  "PowerControl": [
    {
      "@odata.id": "/redfish/v1/Chassis/1U/Power#/PowerControl/0",
      "MemberId": "0",
      "Name": "Server Power Control",
      "PowerConsumedWatts": 344,
      "PowerCapacityWatts": 800,
      "PowerMetrics": {"IntervalInMin": 30, "MinConsumedWatts": 271, "MaxConsumedWatts": 489, "AverageConsumedWatts": 319}
    }
  ],
  "Voltages": []
}"##;
        assert_eq!(parse(body).unwrap(), 344.0);
    }

    #[test]
    fn reads_environment_metrics() {
        let body = br##"{
  "@odata.id": "/redfish/v1/Chassis/1U/EnvironmentMetrics",
  "@odata.type": "#EnvironmentMetrics.v1_3_0.EnvironmentMetrics",
  "Id": "EnvironmentMetrics",
  "Name": "Chassis Environment Metrics",
  "PowerWatts": {"DataSourceUri": "/redfish/v1/Chassis/1U/Sensors/TotalPower", "Reading": 374.5},
  "EnergykWh": {"Reading": 36166.8}
}"##;
        assert_eq!(parse(body).unwrap(), 374.5);
    }

    #[test]
    fn refuses_garbage_missing_and_negative_readings() {
        assert!(matches!(parse(b"<html>"), Err(ParseError::Json(_))));
        assert!(matches!(
            parse(br#"{"PowerControl":[{}]}"#),
            Err(ParseError::Missing(_))
        ));
        assert!(matches!(
            parse(br#"{"PowerWatts":{"Reading":null}}"#),
            Err(ParseError::Missing(_))
        ));
        assert!(matches!(
            parse(br#"{"PowerWatts":{"Reading":-5}}"#),
            Err(ParseError::Invalid(_))
        ));
    }
}
