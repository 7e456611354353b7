//! Notifications to stakeholders: their audiences, their status (DRAFT → APPROVED → SENT, the
//! approver never the author), and the deadline customer and regulator notices keep.

const HOUR_MICROS: i64 = 3600 * 1_000_000;

numbered! {
    /// Who a notification is for.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Audience {
        Customers = 1 => "CUSTOMERS",
        Regulator = 2 => "REGULATOR",
        Internal = 3 => "INTERNAL",
    }
}

numbered! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum NotificationStatus {
        Draft = 1 => "DRAFT",
        Approved = 2 => "APPROVED",
        Sent = 3 => "SENT",
    }
}

/// When a notice is due: customer and regulator notices `deadline_hours` after the declaration
/// when customer data is affected (GDPR-style 72 h by default); other notices have no deadline.
pub fn deadline(
    audience: Option<Audience>,
    customer_data_affected: bool,
    declare_time: i64,
    deadline_hours: u32,
) -> Option<i64> {
    let regulated = matches!(audience, Some(Audience::Customers | Audience::Regulator));
    (customer_data_affected && regulated)
        .then_some(declare_time + i64::from(deadline_hours) * HOUR_MICROS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_and_regulator_notices_are_due_after_the_declaration() {
        let declared = 1_000;
        for audience in [Audience::Customers, Audience::Regulator] {
            assert_eq!(
                deadline(Some(audience), true, declared, 72),
                Some(declared + 72 * HOUR_MICROS)
            );
            assert_eq!(deadline(Some(audience), false, declared, 72), None);
        }
        assert_eq!(deadline(Some(Audience::Internal), true, declared, 72), None);
        assert_eq!(deadline(None, true, declared, 72), None);
        assert_eq!(
            deadline(Some(Audience::Regulator), true, 0, 24),
            Some(24 * HOUR_MICROS)
        );
    }
}
