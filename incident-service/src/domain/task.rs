//! Response tasks: their status (who owns a task and which phase it belongs to are
//! [`OwnerTeam`](super::preparation::OwnerTeam) and [`TaskPhase`](super::preparation::TaskPhase)).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    Open = 1,
    InProgress = 2,
    Blocked = 3,
    Done = 4,
    WontDo = 5,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 5] = [
        TaskStatus::Open,
        TaskStatus::InProgress,
        TaskStatus::Blocked,
        TaskStatus::Done,
        TaskStatus::WontDo,
    ];

    /// The status of a stored number.
    pub fn from_i32(v: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as i32 == v)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "OPEN",
            TaskStatus::InProgress => "IN_PROGRESS",
            TaskStatus::Blocked => "BLOCKED",
            TaskStatus::Done => "DONE",
            TaskStatus::WontDo => "WONT_DO",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_numbers_name_each_status() {
        for s in TaskStatus::ALL {
            assert_eq!(TaskStatus::from_i32(s as i32), Some(s));
        }
        assert_eq!(TaskStatus::from_i32(0), None);
        assert_eq!(TaskStatus::from_i32(6), None);
        assert_eq!(TaskStatus::WontDo.as_str(), "WONT_DO");
    }
}
