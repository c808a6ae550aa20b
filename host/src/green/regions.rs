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

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Gcp => "gcp",
            Provider::Azure => "azure",
            Provider::OnPremises => "on_premises",
        }
    }
}

/// A region's grid intensity and who runs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegionInfo {
    pub gco2_per_kwh: f64,
    pub provider: Provider,
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
    ("eu-central-1", 338.0, Aws),
    ("eu-north-1", 9.0, Aws),
    ("eu-south-1", 233.0, Aws),
    ("ap-south-1", 708.0, Aws),
    ("ap-northeast-1", 465.0, Aws),
    ("ap-northeast-2", 416.0, Aws),
    ("ap-southeast-1", 408.0, Aws),
    ("ap-southeast-2", 790.0, Aws),
    ("af-south-1", 928.0, Aws),
    // GCP
    ("us-central1", 454.0, Gcp),
    ("us-east1", 480.0, Gcp),
    ("us-east4", 361.0, Gcp),
    ("us-west1", 78.0, Gcp),
    ("northamerica-northeast1", 29.0, Gcp),
    ("southamerica-east1", 103.0, Gcp),
    ("europe-west1", 167.0, Gcp),
    ("europe-west2", 225.0, Gcp),
    ("europe-west3", 338.0, Gcp),
    ("europe-west4", 390.0, Gcp),
    ("europe-west9", 51.0, Gcp),
    ("europe-north1", 112.0, Gcp),
    ("asia-east1", 541.0, Gcp),
    ("asia-northeast1", 465.0, Gcp),
    ("asia-south1", 708.0, Gcp),
    ("asia-southeast1", 408.0, Gcp),
    ("australia-southeast1", 790.0, Gcp),
    // Azure
    ("eastus", 379.0, Azure),
    ("eastus2", 379.0, Azure),
    ("westus", 322.0, Azure),
    ("westus2", 322.0, Azure),
    ("centralus", 454.0, Azure),
    ("canadacentral", 120.0, Azure),
    ("brazilsouth", 62.0, Azure),
    ("northeurope", 279.0, Azure),
    ("westeurope", 390.0, Azure),
    ("uksouth", 225.0, Azure),
    ("francecentral", 51.0, Azure),
    ("germanywestcentral", 338.0, Azure),
    ("swedencentral", 9.0, Azure),
    ("centralindia", 708.0, Azure),
    ("japaneast", 465.0, Azure),
    ("southeastasia", 408.0, Azure),
    ("australiaeast", 790.0, Azure),
    // Countries (ISO 3166-1 alpha-2)
    ("AU", 790.0, OnPremises),
    ("BE", 167.0, OnPremises),
    ("BR", 62.0, OnPremises),
    ("CA", 120.0, OnPremises),
    ("CH", 12.0, OnPremises),
    ("CN", 555.0, OnPremises),
    ("DE", 338.0, OnPremises),
    ("ES", 171.0, OnPremises),
    ("FI", 112.0, OnPremises),
    ("FR", 51.0, OnPremises),
    ("GB", 225.0, OnPremises),
    ("IE", 279.0, OnPremises),
    ("IN", 708.0, OnPremises),
    ("IT", 233.0, OnPremises),
    ("JP", 465.0, OnPremises),
    ("KR", 416.0, OnPremises),
    ("NL", 390.0, OnPremises),
    ("NO", 8.0, OnPremises),
    ("PL", 750.0, OnPremises),
    ("SE", 9.0, OnPremises),
    ("SG", 408.0, OnPremises),
    ("US", 379.0, OnPremises),
    ("ZA", 928.0, OnPremises),
];

/// The world average, for a region the table does not know.
pub const WORLD: RegionInfo = RegionInfo {
    gco2_per_kwh: 475.0,
    provider: OnPremises,
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
        .map(|&(_, gco2_per_kwh, provider)| RegionInfo {
            gco2_per_kwh,
            provider,
        })
}

/// Every region of the table, for documentation checks.
pub fn all() -> impl Iterator<Item = (&'static str, RegionInfo)> {
    REGIONS.iter().map(|&(n, g, p)| {
        (
            n,
            RegionInfo {
                gco2_per_kwh: g,
                provider: p,
            },
        )
    })
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
            let row = format!("| `{name}` | {} |", info.gco2_per_kwh);
            assert!(doc.contains(&row), "docs/ENERGY.md lacks the row {row}");
        }
    }
}
