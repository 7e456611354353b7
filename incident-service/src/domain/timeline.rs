//! What the append-only timeline of an incident records: one event per change, of one kind.

/// The kind of a timeline event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimelineKind {
    Declared = 1,
    Updated = 2,
    PhaseChanged = 3,
    Closed = 4,
    Note = 5,
    ReviewRecorded = 6,
    IndicatorAdded = 7,
    RoleAssigned = 8,
    Evidence = 9,
    Communication = 10,
    Task = 11,
}
