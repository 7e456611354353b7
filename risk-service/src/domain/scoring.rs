//! Risk scoring: the derived values of an assessment under a scoring policy.
//!
//! Standard methodology (DESIGN.md): exposure = impact × likelihood (1–25); score =
//! exposure × control deficiency (1–125); severity from configurable bands over the score;
//! strategy quadrant from exposure (high when ≥ threshold) and control deficiency (adequate
//! when ≤ threshold). NIST SP 800-30 Rev.1: the level of risk comes from Appendix I,
//! Table I-2 and sets the severity; exposure, score and strategy are computed as above.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Methodology {
    /// impact × likelihood × control deficiency, banded 1–125.
    Standard = 1,
    /// NIST SP 800-30 Rev.1 qualitative level of risk (Table I-2).
    #[value(name = "nist-800-30")]
    #[serde(rename = "nist-800-30")]
    Nist80030 = 2,
}

numbered!(Methodology {
    Standard => "STANDARD",
    Nist80030 => "NIST_800_30",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Low = 1,
    Medium = 2,
    High = 3,
    Critical = 4,
}

numbered!(Severity {
    Low => "LOW",
    Medium => "MEDIUM",
    High => "HIGH",
    Critical => "CRITICAL",
});

/// The `ResponseStrategy` quadrant; the discriminants are its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    Tolerate = 1,
    Operate = 2,
    Monitor = 3,
    Improve = 4,
}

numbered!(Strategy {
    Tolerate => "TOLERATE",
    Operate => "OPERATE",
    Monitor => "MONITOR",
    Improve => "IMPROVE",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RiskLevel {
    VeryLow = 1,
    Low = 2,
    Moderate = 3,
    High = 4,
    VeryHigh = 5,
}

numbered!(RiskLevel {
    VeryLow => "VERY_LOW",
    Low => "LOW",
    Moderate => "MODERATE",
    High => "HIGH",
    VeryHigh => "VERY_HIGH",
});

/// A severity band over the score, inclusive at both ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Band {
    pub severity: Severity,
    pub min: u8,
    pub max: u8,
}

/// Every threshold of scoring, loaded from configuration and checked at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringPolicy {
    pub methodology: Methodology,
    /// Exposure at or above this is "high" (default 12).
    pub high_exposure_threshold: u8,
    /// Control deficiency at or below this is "adequate" (default 2).
    pub adequate_control_deficiency: u8,
    /// Severity bands over the score 1–125; must cover it without gap or overlap.
    pub bands: Vec<Band>,
}

/// The values an assessment derives from its three metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Derived {
    pub exposure: u8,
    pub score: u8,
    pub severity: Severity,
    pub strategy: Strategy,
    pub risk_level: Option<RiskLevel>,
    pub methodology: Methodology,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("scoring bands must cover 1–125 without gap or overlap: {0}")]
    Bands(String),
    #[error("high_exposure_threshold must be within 1–25 (got {0})")]
    ExposureThreshold(u8),
    #[error("adequate_control_deficiency must be within 1–5 (got {0})")]
    DeficiencyThreshold(u8),
}

pub const METRIC_MIN: u8 = 1;
pub const METRIC_MAX: u8 = 5;
pub const SCORE_MAX: u8 = 125;

impl ScoringPolicy {
    /// DESIGN.md's defaults for a methodology.
    pub fn defaults(methodology: Methodology) -> Self {
        ScoringPolicy {
            methodology,
            high_exposure_threshold: 12,
            adequate_control_deficiency: 2,
            bands: vec![
                Band {
                    severity: Severity::Low,
                    min: 1,
                    max: 15,
                },
                Band {
                    severity: Severity::Medium,
                    min: 16,
                    max: 40,
                },
                Band {
                    severity: Severity::High,
                    min: 41,
                    max: 75,
                },
                Band {
                    severity: Severity::Critical,
                    min: 76,
                    max: 125,
                },
            ],
        }
    }

    /// Checks thresholds and that the bands cover 1–125 exactly once, each severity at most
    /// once and in increasing order.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !(1..=25).contains(&self.high_exposure_threshold) {
            return Err(PolicyError::ExposureThreshold(self.high_exposure_threshold));
        }
        if !(METRIC_MIN..=METRIC_MAX).contains(&self.adequate_control_deficiency) {
            return Err(PolicyError::DeficiencyThreshold(
                self.adequate_control_deficiency,
            ));
        }
        let mut bands = self.bands.clone();
        bands.sort_by_key(|b| b.min);
        let mut next = 1u16;
        for (i, b) in bands.iter().enumerate() {
            if b.min > b.max {
                return Err(PolicyError::Bands(format!(
                    "{:?} starts at {} after it ends at {}",
                    b.severity, b.min, b.max
                )));
            }
            match u16::from(b.min).cmp(&next) {
                std::cmp::Ordering::Greater => {
                    return Err(PolicyError::Bands(format!(
                        "scores {next}–{} are in no band",
                        b.min - 1
                    )));
                }
                std::cmp::Ordering::Less => {
                    return Err(PolicyError::Bands(format!(
                        "{:?} starts at {}, inside the previous band",
                        b.severity, b.min
                    )));
                }
                std::cmp::Ordering::Equal => {}
            }
            if i > 0 && bands[i - 1].severity >= b.severity {
                return Err(PolicyError::Bands(
                    "severities must increase with the score, each used once".into(),
                ));
            }
            next = u16::from(b.max) + 1;
        }
        if next != u16::from(SCORE_MAX) + 1 {
            return Err(PolicyError::Bands(format!(
                "scores {next}–{SCORE_MAX} are in no band"
            )));
        }
        Ok(())
    }

    /// A short stable id of this policy, stored with every assessment it derives.
    pub fn id(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&json);
        let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}-{hex}", self.methodology)
    }

    pub fn severity_of_score(&self, score: u8) -> Severity {
        self.bands
            .iter()
            .find(|b| (b.min..=b.max).contains(&score))
            .map_or(Severity::Critical, |b| b.severity)
    }

    /// Derives exposure, score, severity, strategy and (NIST) risk level. The metrics must
    /// be 1–5 (validated at the API edge).
    pub fn derive(&self, impact: u8, likelihood: u8, control_deficiency: u8) -> Derived {
        let exposure = impact * likelihood;
        let score = exposure * control_deficiency;
        let high = exposure >= self.high_exposure_threshold;
        let adequate = control_deficiency <= self.adequate_control_deficiency;
        let strategy = match (high, adequate) {
            (false, false) => Strategy::Tolerate,
            (false, true) => Strategy::Operate,
            (true, true) => Strategy::Monitor,
            (true, false) => Strategy::Improve,
        };
        let (severity, risk_level) = match self.methodology {
            Methodology::Standard => (self.severity_of_score(score), None),
            Methodology::Nist80030 => {
                let level = nist_level(likelihood, impact);
                (level.severity(), Some(level))
            }
        };
        Derived {
            exposure,
            score,
            severity,
            strategy,
            risk_level,
            methodology: self.methodology,
        }
    }
}

/// NIST SP 800-30 Rev.1, Appendix I, Table I-2: level of risk by likelihood (rows, Very Low
/// … Very High) and level of impact (columns, Very Low … Very High).
const TABLE_I2: [[RiskLevel; 5]; 5] = {
    use RiskLevel::*;
    [
        // likelihood Very Low
        [VeryLow, VeryLow, VeryLow, Low, Low],
        // Low
        [VeryLow, Low, Low, Low, Moderate],
        // Moderate
        [VeryLow, Low, Moderate, Moderate, High],
        // High
        [VeryLow, Low, Moderate, High, VeryHigh],
        // Very High
        [VeryLow, Low, Moderate, High, VeryHigh],
    ]
};

/// The Table I-2 level of risk; `likelihood` and `impact` are 1 (Very Low) … 5 (Very High).
pub fn nist_level(likelihood: u8, impact: u8) -> RiskLevel {
    let row = usize::from(likelihood.clamp(METRIC_MIN, METRIC_MAX) - 1);
    let col = usize::from(impact.clamp(METRIC_MIN, METRIC_MAX) - 1);
    TABLE_I2[row][col]
}

impl RiskLevel {
    /// DESIGN.md: Very Low/Low → LOW, Moderate → MEDIUM, High → HIGH, Very High → CRITICAL.
    pub fn severity(self) -> Severity {
        match self {
            RiskLevel::VeryLow | RiskLevel::Low => Severity::Low,
            RiskLevel::Moderate => Severity::Medium,
            RiskLevel::High => Severity::High,
            RiskLevel::VeryHigh => Severity::Critical,
        }
    }
}

impl fmt::Display for Methodology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Methodology::Standard => "standard",
            Methodology::Nist80030 => "nist-800-30",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert, prop_assert_eq, proptest};
    use proptest::strategy::Strategy as _;

    fn standard() -> ScoringPolicy {
        ScoringPolicy::defaults(Methodology::Standard)
    }

    #[test]
    fn worked_examples_from_design() {
        let p = standard();
        let d = p.derive(4, 4, 4);
        assert_eq!(
            (d.exposure, d.score, d.severity, d.strategy),
            (16, 64, Severity::High, Strategy::Improve)
        );
        let d = p.derive(2, 3, 1);
        assert_eq!(
            (d.exposure, d.score, d.severity, d.strategy),
            (6, 6, Severity::Low, Strategy::Operate)
        );
        let d = p.derive(5, 5, 2);
        assert_eq!(
            (d.exposure, d.score, d.severity, d.strategy),
            (25, 50, Severity::High, Strategy::Monitor)
        );
    }

    #[test]
    fn all_125_combinations_follow_the_formula() {
        let p = standard();
        for i in 1..=5u8 {
            for l in 1..=5u8 {
                for c in 1..=5u8 {
                    let d = p.derive(i, l, c);
                    let score = i * l * c;
                    assert_eq!(d.exposure, i * l);
                    assert_eq!(d.score, score);
                    let sev = match score {
                        1..=15 => Severity::Low,
                        16..=40 => Severity::Medium,
                        41..=75 => Severity::High,
                        _ => Severity::Critical,
                    };
                    assert_eq!(d.severity, sev, "({i},{l},{c})");
                    let strategy = match (i * l >= 12, c <= 2) {
                        (false, false) => Strategy::Tolerate,
                        (false, true) => Strategy::Operate,
                        (true, true) => Strategy::Monitor,
                        (true, false) => Strategy::Improve,
                    };
                    assert_eq!(d.strategy, strategy, "({i},{l},{c})");
                    assert_eq!(d.risk_level, None);
                }
            }
        }
    }

    #[test]
    fn all_25_nist_cells() {
        use RiskLevel::*;
        // (likelihood, impact) → level, transcribed cell by cell from Table I-2.
        let expected = [
            ((5, 1), VeryLow),
            ((5, 2), Low),
            ((5, 3), Moderate),
            ((5, 4), High),
            ((5, 5), VeryHigh),
            ((4, 1), VeryLow),
            ((4, 2), Low),
            ((4, 3), Moderate),
            ((4, 4), High),
            ((4, 5), VeryHigh),
            ((3, 1), VeryLow),
            ((3, 2), Low),
            ((3, 3), Moderate),
            ((3, 4), Moderate),
            ((3, 5), High),
            ((2, 1), VeryLow),
            ((2, 2), Low),
            ((2, 3), Low),
            ((2, 4), Low),
            ((2, 5), Moderate),
            ((1, 1), VeryLow),
            ((1, 2), VeryLow),
            ((1, 3), VeryLow),
            ((1, 4), Low),
            ((1, 5), Low),
        ];
        let p = ScoringPolicy::defaults(Methodology::Nist80030);
        for ((l, i), level) in expected {
            assert_eq!(nist_level(l, i), level, "likelihood {l}, impact {i}");
            let d = p.derive(i, l, 3);
            assert_eq!(d.risk_level, Some(level));
            assert_eq!(d.severity, level.severity());
            assert_eq!(d.exposure, i * l);
            assert_eq!(d.score, i * l * 3);
            assert_eq!(d.methodology, Methodology::Nist80030);
        }
    }

    #[test]
    fn nist_severity_mapping() {
        assert_eq!(RiskLevel::VeryLow.severity(), Severity::Low);
        assert_eq!(RiskLevel::Low.severity(), Severity::Low);
        assert_eq!(RiskLevel::Moderate.severity(), Severity::Medium);
        assert_eq!(RiskLevel::High.severity(), Severity::High);
        assert_eq!(RiskLevel::VeryHigh.severity(), Severity::Critical);
    }

    #[test]
    fn default_bands_are_valid() {
        assert_eq!(standard().validate(), Ok(()));
        assert_eq!(
            ScoringPolicy::defaults(Methodology::Nist80030).validate(),
            Ok(())
        );
    }

    #[test]
    fn band_gaps_overlaps_and_order_are_rejected() {
        let mut gap = standard();
        gap.bands[1].min = 17;
        assert!(matches!(gap.validate(), Err(PolicyError::Bands(m)) if m.contains("16–16")));
        let mut overlap = standard();
        overlap.bands[2].min = 40;
        assert!(matches!(overlap.validate(), Err(PolicyError::Bands(_))));
        let mut short = standard();
        short.bands[3].max = 120;
        assert!(matches!(short.validate(), Err(PolicyError::Bands(m)) if m.contains("121–125")));
        let mut late = standard();
        late.bands[0].min = 2;
        assert!(late.validate().is_err());
        let mut swapped = standard();
        swapped.bands[0].severity = Severity::High;
        swapped.bands[2].severity = Severity::Low;
        assert!(swapped.validate().is_err());
        let mut inverted = standard();
        inverted.bands[1] = Band {
            severity: Severity::Medium,
            min: 40,
            max: 16,
        };
        assert!(inverted.validate().is_err());
        let mut t = standard();
        t.high_exposure_threshold = 0;
        assert_eq!(t.validate(), Err(PolicyError::ExposureThreshold(0)));
        let mut t = standard();
        t.adequate_control_deficiency = 6;
        assert_eq!(t.validate(), Err(PolicyError::DeficiencyThreshold(6)));
    }

    #[test]
    fn policy_id_changes_with_any_threshold() {
        let a = standard();
        let mut b = standard();
        b.high_exposure_threshold = 10;
        assert_ne!(a.id(), b.id());
        assert!(a.id().starts_with("standard-"));
        assert_eq!(a.id(), standard().id());
    }

    fn arb_bands() -> impl proptest::strategy::Strategy<Value = Vec<Band>> {
        // Three cut points strictly inside 1..125 produce four contiguous bands.
        proptest::sample::subsequence((1u8..125).collect::<Vec<_>>(), 3).prop_map(|cuts| {
            let sev = [
                Severity::Low,
                Severity::Medium,
                Severity::High,
                Severity::Critical,
            ];
            let mut bands = Vec::new();
            let mut start = 1u8;
            for (i, cut) in cuts.iter().enumerate() {
                bands.push(Band {
                    severity: sev[i],
                    min: start,
                    max: *cut,
                });
                start = cut + 1;
            }
            bands.push(Band {
                severity: Severity::Critical,
                min: start,
                max: 125,
            });
            bands
        })
    }

    proptest! {
        #[test]
        fn contiguous_bands_validate_and_every_score_has_its_band(bands in arb_bands()) {
            let p = ScoringPolicy { bands: bands.clone(), ..standard() };
            prop_assert_eq!(p.validate(), Ok(()));
            for s in 1..=125u8 {
                let b = bands.iter().find(|b| (b.min..=b.max).contains(&s));
                prop_assert_eq!(Some(p.severity_of_score(s)), b.map(|b| b.severity));
            }
        }

        #[test]
        fn severity_never_decreases_with_score(i in 1u8..=5, l in 1u8..=5, c in 1u8..=4) {
            let p = standard();
            prop_assert!(p.derive(i, l, c).severity <= p.derive(i, l, c + 1).severity);
        }
    }
}
