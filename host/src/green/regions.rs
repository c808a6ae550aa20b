//! Grid carbon intensity per region, embedded: the main AWS, GCP and Azure
//! regions and ISO 3166-1 country codes (for servers outside a cloud), with
//! each provider's data-centre PUE. Annual averages, rounded to the gram;
//! sources and dates in docs/ENERGY.md.

/// Who runs the data centre: decides the PUE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Aws,
    Gcp,
    Azure,
    /// A country code: a data centre of unknown operator.
    OnPremises,
}

impl Provider {
    /// Power usage effectiveness: facility energy over IT energy.
    pub fn pue(self) -> f64 {
        match self {
            Provider::Aws => 1.135,
            Provider::Gcp => 1.1,
            Provider::Azure => 1.185,
            Provider::OnPremises => 1.58,
        }
    }

    /// As the documentation's table names it.
    pub fn label(self) -> &'static str {
        match self {
            Provider::Aws => "AWS",
            Provider::Gcp => "GCP",
            Provider::Azure => "Azure",
            Provider::OnPremises => "country",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Gcp => "gcp",
            Provider::Azure => "azure",
            Provider::OnPremises => "on_premises",
        }
    }
}

/// A region's grid intensity, who runs it, and its PUE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegionInfo {
    pub gco2_per_kwh: f64,
    pub provider: Provider,
    /// The provider's average, or the region's own figure where the
    /// provider publishes one.
    pub pue: f64,
}

/// GCP regions with a published trailing-twelve-month PUE of their own
/// (the figures Cloud Carbon Footprint uses); others take GCP's average.
const GCP_REGION_PUE: &[(&str, f64)] = &[
    ("us-east4", 1.08),
    ("us-central1", 1.11),
    ("europe-west1", 1.09),
    ("europe-west4", 1.07),
    ("europe-north1", 1.09),
    ("asia-east1", 1.12),
    ("asia-southeast1", 1.13),
];

fn info(name: &str, gco2_per_kwh: f64, provider: Provider) -> RegionInfo {
    let own = (provider == Gcp)
        .then(|| GCP_REGION_PUE.iter().find(|(n, _)| *n == name))
        .flatten();
    RegionInfo {
        gco2_per_kwh,
        provider,
        pue: own.map_or_else(|| provider.pue(), |&(_, pue)| pue),
    }
}

use Provider::{Aws, Azure, Gcp, OnPremises};

/// (region or country code, gCO2e/kWh, provider).
const REGIONS: &[(&str, f64, Provider)] = &[
    // AWS
    ("us-east-1", 379.0, Aws),
    ("us-east-2", 411.0, Aws),
    ("us-west-1", 322.0, Aws),
    ("us-west-2", 322.0, Aws),
    ("ca-central-1", 120.0, Aws),
    ("sa-east-1", 62.0, Aws),
    ("eu-west-1", 279.0, Aws),
    ("eu-west-2", 225.0, Aws),
    ("eu-west-3", 51.0, Aws),
    ("eu-central-1", 311.0, Aws),
    ("eu-north-1", 9.0, Aws),
    ("eu-south-1", 213.0, Aws),
    ("ap-south-1", 708.0, Aws),
    ("ap-northeast-1", 466.0, Aws),
    ("ap-northeast-2", 416.0, Aws),
    ("ap-southeast-1", 408.0, Aws),
    ("ap-southeast-2", 760.0, Aws),
    ("af-south-1", 901.0, Aws),
    // GCP
    ("us-central1", 456.0, Gcp),
    ("us-east1", 434.0, Gcp),
    ("us-east4", 309.0, Gcp),
    ("us-west1", 60.0, Gcp),
    ("northamerica-northeast1", 28.0, Gcp),
    ("southamerica-east1", 129.0, Gcp),
    ("europe-west1", 110.0, Gcp),
    ("europe-west2", 172.0, Gcp),
    ("europe-west3", 269.0, Gcp),
    ("europe-west4", 283.0, Gcp),
    ("europe-west9", 59.0, Gcp),
    ("europe-north1", 127.0, Gcp),
    ("asia-east1", 456.0, Gcp),
    ("asia-northeast1", 464.0, Gcp),
    ("asia-south1", 670.0, Gcp),
    ("asia-southeast1", 372.0, Gcp),
    ("australia-southeast1", 598.0, Gcp),
    // Azure
    ("eastus", 379.0, Azure),
    ("eastus2", 379.0, Azure),
    ("westus", 322.0, Azure),
    ("westus2", 322.0, Azure),
    ("centralus", 426.0, Azure),
    ("canadacentral", 120.0, Azure),
    ("brazilsouth", 62.0, Azure),
    ("northeurope", 279.0, Azure),
    ("westeurope", 328.0, Azure),
    ("uksouth", 225.0, Azure),
    ("francecentral", 51.0, Azure),
    ("germanywestcentral", 339.0, Azure),
    ("swedencentral", 6.0, Azure),
    ("centralindia", 708.0, Azure),
    ("japaneast", 466.0, Azure),
    ("southeastasia", 408.0, Azure),
    ("australiaeast", 790.0, Azure),
    // Countries (ISO 3166-1 alpha-2)
    ("AU", 960.0, OnPremises),
    ("BE", 110.0, OnPremises),
    ("BR", 62.0, OnPremises),
    ("CA", 19.0, OnPremises),
    ("CH", 12.0, OnPremises),
    ("CN", 537.0, OnPremises),
    ("DE", 339.0, OnPremises),
    ("ES", 171.0, OnPremises),
    ("FI", 95.0, OnPremises),
    ("FR", 51.0, OnPremises),
    ("GB", 212.0, OnPremises),
    ("IE", 336.0, OnPremises),
    ("IN", 708.0, OnPremises),
    ("IT", 324.0, OnPremises),
    ("JP", 466.0, OnPremises),
    ("KR", 416.0, OnPremises),
    ("NL", 328.0, OnPremises),
    ("NO", 8.0, OnPremises),
    ("PL", 760.0, OnPremises),
    ("SE", 6.0, OnPremises),
    ("SG", 408.0, OnPremises),
    ("US", 424.0, OnPremises),
    ("ZA", 901.0, OnPremises),
];

/// The world average, for a region the table does not know.
pub const WORLD: RegionInfo = RegionInfo {
    gco2_per_kwh: 475.0,
    provider: OnPremises,
    pue: 1.58,
};

/// `region` as written, or a country code in any case.
pub fn lookup(region: &str) -> Option<RegionInfo> {
    REGIONS
        .iter()
        .find(|(name, _, provider)| {
            if *provider == OnPremises {
                name.eq_ignore_ascii_case(region)
            } else {
                *name == region
            }
        })
        .map(|&(name, gco2_per_kwh, provider)| info(name, gco2_per_kwh, provider))
}

/// Every region of the table, for documentation checks.
pub fn all() -> impl Iterator<Item = (&'static str, RegionInfo)> {
    REGIONS.iter().map(|&(n, g, p)| (n, info(n, g, p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_country_codes_resolve() {
        let paris = lookup("eu-west-3").unwrap();
        assert_eq!(paris.gco2_per_kwh, 51.0);
        assert_eq!(paris.provider.pue(), 1.135);
        assert_eq!(lookup("fr"), lookup("FR"));
        assert_eq!(lookup("FR").unwrap().provider, OnPremises);
        assert_eq!(lookup("europe-west9").unwrap().provider, Gcp);
        assert_eq!(lookup("francecentral").unwrap().provider, Azure);
        // GCP's own PUE where Google publishes one, its average elsewhere.
        assert_eq!(lookup("europe-west4").unwrap().pue, 1.07);
        assert_eq!(lookup("europe-west9").unwrap().pue, 1.1);
        assert_eq!(lookup("FR").unwrap().pue, 1.58);
        assert_eq!(WORLD.pue, OnPremises.pue());
        assert!(lookup("EU-WEST-3").is_none());
        assert!(lookup("mars-north-1").is_none());
    }

    #[test]
    fn the_table_has_no_duplicates_and_sane_values() {
        let mut seen = std::collections::HashSet::new();
        for (name, info) in all() {
            assert!(seen.insert(name.to_ascii_lowercase()), "{name} twice");
            assert!((0.0..=1200.0).contains(&info.gco2_per_kwh), "{name}");
        }
    }

    #[test]
    fn docs_list_every_region() {
        let doc = include_str!("../../../docs/ENERGY.md");
        for (name, info) in all() {
            let row = format!(
                "| `{name}` | {} | {} | {} |",
                info.gco2_per_kwh,
                info.provider.label(),
                info.pue
            );
            assert!(doc.contains(&row), "docs/ENERGY.md lacks the row {row}");
        }
    }
}
