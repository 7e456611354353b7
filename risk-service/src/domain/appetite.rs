//! Risk appetite: where open, assessed risks stand against their service's appetite and
//! tolerance (residual severities). A risk at or below appetite is within appetite; above it
//! and at or below tolerance, above appetite; above tolerance, outside tolerance. A risk above
//! appetite that is treated or accepted (an approved, unexpired response proposed at its
//! current severity or above) is counted apart and raises no status.

use super::scoring::Severity;

/// Appetite and tolerance of a service; `appetite <= tolerance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub appetite: Severity,
    pub tolerance: Severity,
}

/// The status of a set of risks: the worst of its risks not treated or accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AppetiteStatus {
    WithinAppetite = 1,
    AboveAppetite = 2,
    OutsideTolerance = 3,
}

/// Risks by where they stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppetiteCounts {
    /// At or below appetite (treated or not).
    pub within_appetite: i64,
    /// Above appetite, at or below tolerance, not treated or accepted.
    pub above_appetite: i64,
    /// Above tolerance, not treated or accepted.
    pub outside_tolerance: i64,
    /// Above appetite, treated or accepted.
    pub above_appetite_treated: i64,
}

impl AppetiteCounts {
    /// Judges risks by severity number (`by_severity[s]`, of which `treated[s]` are treated or
    /// accepted) against `t`.
    pub fn judge(by_severity: &[i64; 5], treated: &[i64; 5], t: Thresholds) -> AppetiteCounts {
        let mut c = AppetiteCounts::default();
        for &severity in Severity::ALL.iter() {
            let s = severity as usize;
            let (all, done) = (by_severity[s], treated[s].clamp(0, by_severity[s]));
            if severity as i32 <= t.appetite as i32 {
                c.within_appetite += all;
            } else {
                c.above_appetite_treated += done;
                if severity as i32 <= t.tolerance as i32 {
                    c.above_appetite += all - done;
                } else {
                    c.outside_tolerance += all - done;
                }
            }
        }
        c
    }

    pub fn add(&mut self, other: &AppetiteCounts) {
        self.within_appetite += other.within_appetite;
        self.above_appetite += other.above_appetite;
        self.outside_tolerance += other.outside_tolerance;
        self.above_appetite_treated += other.above_appetite_treated;
    }

    /// The worst status among the risks not treated or accepted (within appetite when none).
    pub fn status(&self) -> AppetiteStatus {
        if self.outside_tolerance > 0 {
            AppetiteStatus::OutsideTolerance
        } else if self.above_appetite > 0 {
            AppetiteStatus::AboveAppetite
        } else {
            AppetiteStatus::WithinAppetite
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEDIUM_HIGH: Thresholds = Thresholds {
        appetite: Severity::Medium,
        tolerance: Severity::High,
    };

    #[test]
    fn each_severity_lands_where_the_thresholds_put_it() {
        // LOW 1, MEDIUM 2, HIGH 3 (1 treated), CRITICAL 4 (4 treated).
        let c = AppetiteCounts::judge(&[0, 1, 2, 3, 4], &[0, 1, 0, 1, 4], MEDIUM_HIGH);
        assert_eq!(
            c,
            AppetiteCounts {
                within_appetite: 3,
                above_appetite: 2,
                outside_tolerance: 0,
                above_appetite_treated: 5,
            }
        );
        // Every critical risk is treated: the untreated HIGH ones set the status.
        assert_eq!(c.status(), AppetiteStatus::AboveAppetite);
        let c = AppetiteCounts::judge(&[0, 1, 2, 3, 4], &[0; 5], MEDIUM_HIGH);
        assert_eq!(c.status(), AppetiteStatus::OutsideTolerance);
        assert_eq!(c.outside_tolerance, 4);
        assert_eq!(
            AppetiteCounts::default().status(),
            AppetiteStatus::WithinAppetite
        );
    }

    #[test]
    fn treated_risks_within_appetite_stay_within() {
        let t = Thresholds {
            appetite: Severity::Critical,
            tolerance: Severity::Critical,
        };
        let c = AppetiteCounts::judge(&[0, 0, 0, 2, 1], &[0, 0, 0, 2, 1], t);
        assert_eq!(c.within_appetite, 3);
        assert_eq!(c.above_appetite_treated, 0);
    }
}
