//! Incident prioritisation by the NIST SP 800-61 Rev.2 factors (Section 3.2.6) and the rule
//! that derives an incident's severity from them unless a responder sets it.
//!
//! Table 3-2 functional impact: None, Low, Medium, High. Table 3-3 information impact: None,
//! Privacy Breach, Proprietary Breach, Integrity Loss — all but None may combine. Table 3-4
//! recoverability effort: Regular, Supplemented, Extended, Not Recoverable.
//!
//! Default rule: each factor value maps to a severity (table below); the incident's severity is
//! the highest of them, raised one level (up to CRITICAL) when customer data is affected. The
//! mapping is configuration ([`SeverityRule`] is deserialisable).

use serde::Deserialize;

numbered! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum FunctionalImpact {
        /// No effect to the organization's ability to provide all services to all users.
        None = 1 => "NONE",
        /// Minimal effect; all critical services still provided to all users, with lost efficiency.
        Low = 2 => "LOW",
        /// Lost the ability to provide a critical service to a subset of system users.
        Medium = 3 => "MEDIUM",
        /// No longer able to provide some critical services to any users.
        High = 4 => "HIGH",
    }
}

numbered! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum InformationImpact {
        /// No information was exfiltrated, changed, deleted, or otherwise compromised.
        None = 1 => "NONE",
        /// Sensitive personally identifiable information was accessed or exfiltrated.
        PrivacyBreach = 2 => "PRIVACY_BREACH",
        /// Unclassified proprietary information was accessed or exfiltrated.
        ProprietaryBreach = 3 => "PROPRIETARY_BREACH",
        /// Sensitive or proprietary information was changed or deleted.
        IntegrityLoss = 4 => "INTEGRITY_LOSS",
    }
}

numbered! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum Recoverability {
        /// Time to recovery is predictable with existing resources.
        Regular = 1 => "REGULAR",
        /// Time to recovery is predictable with additional resources.
        Supplemented = 2 => "SUPPLEMENTED",
        /// Time to recovery is unpredictable; additional resources and outside help are needed.
        Extended = 3 => "EXTENDED",
        /// Recovery is not possible (e.g. sensitive data exfiltrated and posted publicly).
        NotRecoverable = 4 => "NOT_RECOVERABLE",
    }
}

numbered! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum Severity {
        Low = 1 => "LOW",
        Medium = 2 => "MEDIUM",
        High = 3 => "HIGH",
        Critical = 4 => "CRITICAL",
    }
}

impl Severity {
    fn raised(self) -> Severity {
        match self {
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        }
    }
}

/// The NIST factors of an incident, as assessed so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factors {
    pub functional: FunctionalImpact,
    /// One or more; `None` only alone.
    pub information: Vec<InformationImpact>,
    pub recoverability: Recoverability,
    pub customer_data_affected: bool,
}

/// Why a set of information impacts is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InformationError {
    Empty,
    NoneWithOthers,
    Repeated,
}

/// Table 3-3's categories are not mutually exclusive, except None.
pub fn check_information(impacts: &[InformationImpact]) -> Result<(), InformationError> {
    if impacts.is_empty() {
        return Err(InformationError::Empty);
    }
    if impacts.len() > 1 && impacts.contains(&InformationImpact::None) {
        return Err(InformationError::NoneWithOthers);
    }
    let mut sorted = impacts.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != impacts.len() {
        return Err(InformationError::Repeated);
    }
    Ok(())
}

/// Severity per factor value; see the module documentation for the default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityRule {
    /// For None, Low, Medium, High.
    pub functional: [Severity; 4],
    /// For None, Privacy Breach, Proprietary Breach, Integrity Loss.
    pub information: [Severity; 4],
    /// For Regular, Supplemented, Extended, Not Recoverable.
    pub recoverability: [Severity; 4],
    /// Raise the result one level when customer data is affected.
    pub customer_data_raises: bool,
}

impl Default for SeverityRule {
    fn default() -> Self {
        use Severity::*;
        SeverityRule {
            functional: [Low, Low, Medium, High],
            information: [Low, High, High, High],
            recoverability: [Low, Medium, High, Critical],
            customer_data_raises: true,
        }
    }
}

impl SeverityRule {
    pub fn severity(&self, f: &Factors) -> Severity {
        let functional = self.functional[f.functional as usize - 1];
        let information = f
            .information
            .iter()
            .map(|i| self.information[*i as usize - 1])
            .max()
            .unwrap_or(Severity::Low);
        let recoverability = self.recoverability[f.recoverability as usize - 1];
        let worst = functional.max(information).max(recoverability);
        if f.customer_data_affected && self.customer_data_raises {
            worst.raised()
        } else {
            worst
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn factors(
        functional: FunctionalImpact,
        information: &[InformationImpact],
        recoverability: Recoverability,
        customer: bool,
    ) -> Factors {
        Factors {
            functional,
            information: information.to_vec(),
            recoverability,
            customer_data_affected: customer,
        }
    }

    #[test]
    fn default_rule() {
        use FunctionalImpact as F;
        use InformationImpact as I;
        use Recoverability as R;
        let rule = SeverityRule::default();
        assert_eq!(
            rule.severity(&factors(F::None, &[I::None], R::Regular, false)),
            Severity::Low
        );
        assert_eq!(
            rule.severity(&factors(F::Medium, &[I::None], R::Regular, false)),
            Severity::Medium
        );
        assert_eq!(
            rule.severity(&factors(F::Low, &[I::PrivacyBreach], R::Regular, false)),
            Severity::High
        );
        assert_eq!(
            rule.severity(&factors(F::Low, &[I::PrivacyBreach], R::Regular, true)),
            Severity::Critical
        );
        assert_eq!(
            rule.severity(&factors(F::None, &[I::None], R::NotRecoverable, false)),
            Severity::Critical
        );
        assert_eq!(
            rule.severity(&factors(F::None, &[I::None], R::Supplemented, true)),
            Severity::High
        );
    }

    #[test]
    fn information_sets() {
        use InformationImpact as I;
        assert_eq!(check_information(&[I::None]), Ok(()));
        assert_eq!(
            check_information(&[I::PrivacyBreach, I::IntegrityLoss]),
            Ok(())
        );
        assert_eq!(check_information(&[]), Err(InformationError::Empty));
        assert_eq!(
            check_information(&[I::None, I::PrivacyBreach]),
            Err(InformationError::NoneWithOthers)
        );
        assert_eq!(
            check_information(&[I::IntegrityLoss, I::IntegrityLoss]),
            Err(InformationError::Repeated)
        );
    }

    #[test]
    fn rule_is_configuration() {
        let rule: SeverityRule = toml::from_str(
            r#"
functional = ["LOW", "MEDIUM", "HIGH", "CRITICAL"]
information = ["LOW", "MEDIUM", "HIGH", "CRITICAL"]
recoverability = ["LOW", "LOW", "MEDIUM", "HIGH"]
customer_data_raises = false
"#,
        )
        .expect("valid rule");
        let f = factors(
            FunctionalImpact::Low,
            &[InformationImpact::None],
            Recoverability::Regular,
            true,
        );
        assert_eq!(rule.severity(&f), Severity::Medium);
        assert!(toml::from_str::<SeverityRule>("functional = [\"LOW\"]").is_err());
    }

    fn arb_factors() -> impl Strategy<Value = Factors> {
        use FunctionalImpact as F;
        use InformationImpact as I;
        use Recoverability as R;
        (
            proptest::sample::select(vec![F::None, F::Low, F::Medium, F::High]),
            proptest::sample::subsequence(
                vec![I::PrivacyBreach, I::ProprietaryBreach, I::IntegrityLoss],
                0..=3,
            ),
            proptest::sample::select(vec![
                R::Regular,
                R::Supplemented,
                R::Extended,
                R::NotRecoverable,
            ]),
            any::<bool>(),
        )
            .prop_map(|(functional, mut information, recoverability, customer)| {
                if information.is_empty() {
                    information.push(I::None);
                }
                Factors {
                    functional,
                    information,
                    recoverability,
                    customer_data_affected: customer,
                }
            })
    }

    proptest! {
        #[test]
        fn worse_factors_never_lower_severity(f in arb_factors()) {
            let rule = SeverityRule::default();
            let base = rule.severity(&f);
            let worse_recovery = Factors { recoverability: Recoverability::NotRecoverable, ..f.clone() };
            prop_assert!(rule.severity(&worse_recovery) >= base);
            let with_customers = Factors { customer_data_affected: true, ..f.clone() };
            prop_assert!(rule.severity(&with_customers) >= base);
            prop_assert_eq!(check_information(&f.information), Ok(()));
        }
    }
}
